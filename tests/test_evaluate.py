"""The evaluate stage: pooled LOSO scores, seeds, composite datasets, refusing stale or missing folds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from merec import evaluate, runs
from merec.evaluate import metrics
from merec.io import (
    MerecError,
)

NO_OPTIONS = evaluate.EvaluateParams.from_mapping()


def test_pooled_scores_equal_sklearn_on_concatenated_predictions() -> None:
    truth = ["negative", "positive", "surprise", "negative", "negative", "surprise"]
    predicted = ["negative", "negative", "surprise", "positive", "negative", "surprise"]
    classes = ["negative", "positive", "surprise"]
    scores = metrics.scores(truth, predicted, classes)
    assert scores["uf1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert scores["accuracy"] == pytest.approx(4 / 6)


def test_a_class_missing_everywhere_counts_as_zero_instead_of_vanishing() -> None:
    truth = ["negative", "negative", "surprise"]
    scores = metrics.scores(truth, truth, ["negative", "positive", "surprise"])
    assert scores["uar"] == pytest.approx(2 / 3)


def write_fold(folder, fold, rows, epochs: int = 3, validation: bool = False) -> None:
    """A training run's predictions.csv and history.csv, as merec train writes them."""
    folder.mkdir(parents=True)
    frame = pd.DataFrame(rows, columns=["sample", "subject", "fold", "label", "predicted"])
    frame.to_csv(folder / "predictions.csv", index=False)
    history = {"epoch": range(1, epochs + 1), "train_loss": np.linspace(1, 0.5, epochs), "train_accuracy": 0.5}
    if validation:
        history |= {"val_loss": np.linspace(1.2, 0.9, epochs), "val_accuracy": 0.4}
    pd.DataFrame(history).to_csv(folder / "history.csv", index=False)


CLASSES3 = ["negative", "positive", "surprise"]


def toy_dataset(tmp_path, subjects=("d/a", "d/b")) -> None:
    """samples.csv and classes.json of two subjects with two samples each."""
    labels = ["negative", "positive", "surprise", "negative"]
    samples = pd.DataFrame(
        {"sample": ["s1", "s2", "s3", "s4"], "subject": [subjects[0]] * 2 + [subjects[1]] * 2,
         "fold": [subjects[0].replace("/", "-")] * 2 + [subjects[1].replace("/", "-")] * 2, "label": labels, "aus": ""}
    )  # fmt: skip
    samples.to_csv(tmp_path / "samples.csv", index=False)
    (tmp_path / "classes.json").write_text(json.dumps({"classes": CLASSES3}))


def write_seed(folds, seed: int, predicted: list[str], subjects=("d/a", "d/b"), **history) -> None:
    """Both folds of one seed; ``predicted`` for s1..s4."""
    labels = ["negative", "positive", "surprise", "negative"]
    for i, subject in enumerate(subjects):
        fold = subject.replace("/", "-")
        rows = [(f"s{j + 1}", subject, fold, labels[j], predicted[j]) for j in (2 * i, 2 * i + 1)]
        write_fold(folds / f"seed-{seed}" / fold, fold, rows, **history)


def test_evaluate_run_pools_folds_and_writes_reports(tmp_path) -> None:
    toy_dataset(tmp_path)
    write_seed(tmp_path / "folds", 0, ["negative", "negative", "surprise", "negative"])
    metrics = evaluate.run(tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "out", NO_OPTIONS, "toy")
    assert metrics["accuracy"] == pytest.approx(0.75) and metrics["n_folds"] == 2 and metrics["n_seeds"] == 1
    assert metrics["uf1_sd"] == 0.0 and metrics["per_seed"]["0"]["uf1"] == pytest.approx(metrics["uf1"])
    assert "per_dataset" not in metrics and metrics["n_samples"] == 4
    loso = pd.read_csv(tmp_path / "out" / "loso.csv")
    assert list(loso["fold"]) == ["d-a", "d-b", "pooled", "pooled"]
    assert list(loso["seed"].astype(str)) == ["0", "0", "0", "mean"]
    assert list(loso.columns[:4]) == ["fold", "seed", "subject", "dataset"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["uf1"] == pytest.approx(metrics["uf1"])
    for name in ("per_class.csv", "confusion.png", "plots/confusion.csv", "predictions.csv", "learning_curve.png"):
        assert (tmp_path / "out" / name).is_file()
    per_class = pd.read_csv(tmp_path / "out" / "per_class.csv")
    assert list(per_class["class"]) == CLASSES3 and per_class["recall"].tolist() == [1.0, 0.0, 1.0]
    curves = pd.read_csv(tmp_path / "out" / "learning_curves.csv")
    assert list(curves.columns) == evaluate.CURVE_COLUMNS and len(curves) == 6
    assert curves["val_loss"].isna().all() and set(curves["fold"]) == {"d-a", "d-b"}
    mean = pd.read_csv(tmp_path / "out" / "plots" / "learning_curve.csv")  # the DVC plot: one row per epoch
    assert mean["epoch"].tolist() == [1, 2, 3] and mean["runs"].tolist() == [2, 2, 2]
    assert mean["train_loss"].tolist() == pytest.approx(curves.groupby("epoch")["train_loss"].mean().tolist())


def test_several_seeds_give_mean_and_sd_next_to_each_seed(tmp_path) -> None:
    toy_dataset(tmp_path)
    write_seed(tmp_path / "folds", 0, ["negative", "negative", "surprise", "negative"], validation=True)  # acc 0.75
    write_seed(tmp_path / "folds", 3, ["negative", "surprise", "positive", "negative"], validation=True)  # acc 0.5
    write_seed(tmp_path / "folds", 9, ["positive"] * 4)  # not asked for: ignored
    metrics = evaluate.run(
        tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "out", NO_OPTIONS, "toy", seeds=[0, 3]
    )
    assert metrics["n_seeds"] == 2 and sorted(metrics["per_seed"]) == ["0", "3"]
    assert metrics["per_seed"]["0"]["accuracy"] == 0.75 and metrics["per_seed"]["3"]["accuracy"] == 0.5
    assert metrics["accuracy"] == pytest.approx(0.625)
    assert metrics["accuracy_sd"] == pytest.approx(np.std([0.75, 0.5], ddof=1), abs=1e-6)
    uf1s = [metrics["per_seed"][s]["uf1"] for s in ("0", "3")]
    assert metrics["uf1"] == pytest.approx(np.mean(uf1s), abs=1e-6)
    assert metrics["n_samples"] == 4
    loso = pd.read_csv(tmp_path / "out" / "loso.csv", dtype={"seed": str})
    assert len(loso[loso["fold"] != "pooled"]) == 4  # 2 folds x 2 seeds
    last = loso.iloc[-1]
    assert (last["fold"], last["seed"]) == ("pooled", "mean") and last["accuracy"] == pytest.approx(0.625)
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert sorted(predictions["seed"].unique()) == [0, 3]
    curves = pd.read_csv(tmp_path / "out" / "learning_curves.csv")
    assert len(curves) == 12 and curves["val_loss"].notna().all() and sorted(curves["seed"].unique()) == [0, 3]
    assert pd.read_csv(tmp_path / "out" / "plots" / "learning_curve.csv")["runs"].tolist() == [4, 4, 4]
    # without explicit seeds every seed folder counts
    everything = evaluate.run(tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "all", NO_OPTIONS, "toy")
    assert everything["n_seeds"] == 3


def test_a_composite_dataset_is_also_scored_per_component(tmp_path) -> None:
    subjects = ("casme2/01", "samm/006")
    toy_dataset(tmp_path, subjects)
    write_seed(tmp_path / "folds", 0, ["negative", "positive", "positive", "negative"], subjects)
    metrics = evaluate.run(tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "out", NO_OPTIONS, "megc")
    assert sorted(metrics["per_dataset"]) == ["casme2", "samm"]
    assert metrics["per_dataset"]["casme2"]["accuracy"] == 1.0 and metrics["per_dataset"]["samm"]["accuracy"] == 0.5
    assert metrics["per_dataset"]["casme2"]["n_samples"] == 2
    loso = pd.read_csv(tmp_path / "out" / "loso.csv", dtype={"seed": str})
    assert list(loso.loc[loso["fold"] != "pooled", "dataset"]) == ["casme2", "samm"]
    pooled = loso[loso["fold"] == "pooled"]
    assert list(zip(pooled["seed"], pooled["dataset"], strict=True)) == [
        ("0", "casme2"), ("0", "samm"), ("0", "all"), ("mean", "casme2"), ("mean", "samm"), ("mean", "all")
    ]  # fmt: skip


def test_evaluate_refuses_missing_or_stale_folds_and_seeds(tmp_path) -> None:
    write_fold(tmp_path / "folds" / "seed-0" / "d-a", "d-a", [("s1", "d/a", "d-a", "negative", "negative")])
    with pytest.raises(MerecError, match="no predictions for folds d-b"):
        runs.read_predictions(tmp_path / "folds", ["d-a", "d-b"])
    with pytest.raises(MerecError, match="stale"):
        runs.read_predictions(tmp_path / "folds", [])
    with pytest.raises(MerecError, match="no predictions for seed"):
        runs.read_predictions(tmp_path / "folds", ["d-a"], seeds=[0, 1])
    assert list(runs.read_predictions(tmp_path / "folds", ["d-a"])["seed"]) == [0]
    write_fold(tmp_path / "flat" / "d-a", "d-a", [("s1", "d/a", "d-a", "negative", "negative")])
    with pytest.raises(MerecError, match="without a seed level"):
        runs.read_predictions(tmp_path / "flat", ["d-a"])


def test_a_clip_an_earlier_stage_skipped_counts_as_an_error_and_is_listed(tmp_path) -> None:
    toy_dataset(tmp_path)
    labels = ["negative", "positive", "surprise", "negative"]
    for i, subject in enumerate(("d/a", "d/b")):  # s4 lost its features: no prediction for it
        fold = subject.replace("/", "-")
        rows = [(f"s{j + 1}", subject, fold, labels[j], labels[j]) for j in (2 * i, 2 * i + 1) if j != 3]
        write_fold(tmp_path / "folds" / "seed-0" / fold, fold, rows)
    result = evaluate.run(tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "out", NO_OPTIONS, "toy")
    assert result["samples_without_features"] == ["s4"] and result["n_samples_without_features"] == 1
    assert result["accuracy"] == pytest.approx(3 / 4)  # not 3 / 3: the lost clip is a wrong answer
    assert result["uar"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert predictions.set_index("sample").loc["s4", "predicted"] == metrics.NO_PREDICTION


def test_subject_bootstrap_scores_equal_sklearn_on_every_drawn_pool() -> None:
    from merec.evaluate.bootstrap import confusion_counts, scores_of_confusion, subject_bootstrap

    rng = np.random.default_rng(0)
    n = 60
    predictions = pd.DataFrame({
        "seed": np.repeat([0, 1], n // 2), "subject": [f"d/{i % 6}" for i in range(n)],
        "label": rng.choice(CLASSES3, n), "predicted": rng.choice([*CLASSES3, metrics.NO_PREDICTION], n),
    })  # fmt: skip
    counts, subjects = confusion_counts(predictions, CLASSES3)
    picks = [0, 0, 3, 5, 5, 5]  # one draw: subject 0 twice, 3 once, 5 three times
    pooled = sum(counts[:, s] for s in picks)
    values = scores_of_confusion(pooled)
    for i, seed in enumerate((0, 1)):
        rows = pd.concat([predictions[(predictions["seed"] == seed) & (predictions["subject"] == subjects[s])]
                          for s in picks])  # fmt: skip
        expected = metrics.scores(rows["label"], rows["predicted"], CLASSES3)
        assert values["uf1"][i] == pytest.approx(expected["uf1"]) and values["uar"][i] == pytest.approx(expected["uar"])
        assert values["accuracy"][i] == pytest.approx(expected["accuracy"])
    interval = subject_bootstrap(predictions, CLASSES3, draws=500)
    assert interval == subject_bootstrap(predictions, CLASSES3, draws=500)  # fixed draws
    point = np.mean(
        [metrics.scores(g["label"], g["predicted"], CLASSES3)["uf1"] for _, g in predictions.groupby("seed")]
    )
    low, high = interval["uf1_ci95"]
    assert low < point < high and high - low > 0.05


def test_metrics_json_carries_the_interval(tmp_path) -> None:
    toy_dataset(tmp_path)
    write_seed(tmp_path / "folds", 0, ["negative", "negative", "surprise", "negative"])
    result = evaluate.run(tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "out", NO_OPTIONS, "toy")
    assert result["uf1_ci95"][0] <= result["uf1"] <= result["uf1_ci95"][1]
    assert "subject-level bootstrap" in result["interval"]
    none = evaluate.EvaluateParams.from_mapping({"bootstrap": 0})
    assert "uf1_ci95" not in evaluate.run(tmp_path / "samples.csv", tmp_path / "folds", tmp_path / "o2", none, "toy")


def test_paired_difference_is_resolved_only_when_its_interval_excludes_zero() -> None:
    from merec.evaluate.bootstrap import paired_difference

    rng = np.random.default_rng(1)
    n = 120
    base = pd.DataFrame({"seed": 0, "sample": [f"c{i}" for i in range(n)], "subject": [f"d/{i % 12}" for i in range(n)],
                         "label": rng.choice(CLASSES3, n)})  # fmt: skip
    base["predicted"] = np.where(rng.random(n) < 0.5, base["label"], rng.choice(CLASSES3, n))
    same = paired_difference(base, base.copy(), CLASSES3, draws=500)
    assert same["uf1"]["difference"] == 0.0 and not same["uf1"]["resolved"]
    better = base.assign(predicted=base["label"])  # every clip right
    gain = paired_difference(base, better, CLASSES3, draws=500)
    assert gain["accuracy"]["difference"] > 0.2 and gain["accuracy"]["resolved"]
    low, high = gain["uf1"]["ci95"]
    assert 0 < low <= gain["uf1"]["difference"] <= high
