"""LOSO training: honest folds, determinism, learning, and what a fold writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from merec import cli
from merec.checkpoints import load_state_dict
from merec.datasets.ingest import read_samples
from merec.errors import MerecError
from merec.models import build_model
from merec.train import (
    FeatureSet,
    TrainParams,
    channel_scales,
    class_weights,
    flip_batch,
    load_features,
    mirror_partner,
    run,
    train_fold,
    validation_subjects,
    write_fold,
)
from tests.helpers import REPO
from tests.helpers.stages import write_stage

CLASSES = ["negative", "positive", "surprise"]


def toy_features(n_subjects: int = 4, per_class: int = 2, seed: int = 0, noise: float = 0.05) -> FeatureSet:
    """Toy flow (separable for small ``noise``): each class moves a different region of the face."""
    rng = np.random.default_rng(seed)
    rows, faces = [], []
    for s in range(n_subjects):
        for k, label in enumerate(CLASSES):
            for i in range(per_class):
                face = rng.normal(0, noise, (4, 3, 16, 16)).astype(np.float32)
                face[:, 1, 4 * k : 4 * k + 4, :] += 1.0  # v moves in a class-specific band
                faces.append(face)
                rows.append({"sample": f"s{s}-{label}-{i}", "subject": f"d/{s}", "fold": f"d-{s}", "label": label})
    face = np.stack(faces)
    inputs = {"face": face, "apex": face[:, -1], "rois": np.zeros((len(face), 2, 4, 3, 8, 8), np.float32)}
    return FeatureSet(pd.DataFrame(rows), inputs, ["left_brow", "right_brow"], [])


STST = {"dropout": 0.0, "input_size": 0, "stabilise": False}  # the toy maps as they are


def params(**overrides) -> TrainParams:
    base = {"model": "stst", "epochs": 30, "batch_size": 8, "lr": 0.01, "device": "cpu"}
    base["models"] = {"stst": STST}
    return TrainParams.from_mapping(base | overrides)


def test_training_learns_a_separable_problem_and_predicts_only_the_held_out_subject() -> None:
    result = train_fold(toy_features(), CLASSES, "d-1", params())
    predictions = result.predictions
    assert set(predictions["fold"]) == {"d-1"} and len(predictions) == 6
    assert (predictions["predicted"] == predictions["label"]).mean() == 1.0
    history = result.history
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert result.info["train_subjects"] == ["d/0", "d/2", "d/3"]


def test_training_is_deterministic_under_a_seed() -> None:
    first = train_fold(toy_features(), CLASSES, "d-0", params(epochs=3))
    second = train_fold(toy_features(), CLASSES, "d-0", params(epochs=3))
    assert np.array_equal(first.predictions["p_negative"], second.predictions["p_negative"])
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key])


def test_mixed_precision_leaves_the_cpu_path_exactly_as_it_was() -> None:
    plain = train_fold(toy_features(), CLASSES, "d-0", params(epochs=3))
    mixed = train_fold(toy_features(), CLASSES, "d-0", params(epochs=3, amp=True))
    assert mixed.info["params"]["amp"] is True
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, mixed.model.state_dict()[key])


def test_scaling_uses_training_rows_only() -> None:
    features = toy_features()
    features.inputs["apex"][features.samples["fold"] == "d-3"] *= 1000  # an outlier held-out subject
    train_rows = np.flatnonzero(features.samples["fold"] != "d-3")
    scales = channel_scales(features.inputs, train_rows)
    assert scales["apex"].max() < 5
    result = train_fold(features, CLASSES, "d-3", params(epochs=1))
    assert max(result.info["input_scales"]["apex"]) < 5


def test_class_weights_balance_the_training_labels() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]), 3, "balanced")
    assert weights.tolist() == pytest.approx([4 / 6, 2.0, 0.0])
    assert class_weights(np.array([0, 1]), 3, "none").tolist() == [1.0, 1.0, 1.0]


def test_flip_mirrors_x_negates_u_and_swaps_left_right_rois() -> None:
    names = ["left_brow", "nose", "right_brow"]
    assert mirror_partner(names) == [2, 1, 0]
    rois = torch.zeros(1, 3, 1, 3, 2, 2)
    rois[0, 0, 0, 0, 0, 0] = 1.0  # u of left_brow, top-left pixel
    flipped = flip_batch({"rois": rois}, mirror_partner(names))["rois"]
    assert flipped[0, 2, 0, 0, 0, 1] == -1.0
    frames = torch.zeros(1, 2, 1, 2, 2)
    frames[0, :, 0, 0, 0] = 0.8  # grey levels are mirrored, never negated
    assert flip_batch({"frames": frames}, [])["frames"][0, :, 0, 0, 1].tolist() == pytest.approx([0.8, 0.8])
    landmarks = torch.rand(1, 68, 2)
    mirrored = flip_batch({"landmarks": landmarks}, [])["landmarks"]
    assert torch.allclose(mirrored[0, 45], torch.stack([1 - landmarks[0, 36, 0], landmarks[0, 36, 1]]))  # eye corners
    assert torch.allclose(flip_batch({"landmarks": mirrored}, [])["landmarks"], landmarks)


def test_a_landmark_model_trains_within_the_same_protocol() -> None:
    features = toy_features()
    landmarks = np.tile(np.random.default_rng(0).uniform(0.2, 0.8, (1, 68, 2)), (len(features.samples), 1, 1))
    with_landmarks = FeatureSet(features.samples, features.inputs | {"landmarks": landmarks.astype(np.float32)}, [], [])
    options = {"input_size": 16, "patch": 4, "dims": [8, 16], "heads": [1, 2], "depths": [1, 1], "stabilise": False}
    result = train_fold(
        with_landmarks, CLASSES, "d-1", params(model="htnet", epochs=3, augment_flip=True, models={"htnet": options})
    )
    assert len(result.predictions) == 6 and "landmarks" not in result.info["input_scales"]
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    with pytest.raises(MerecError, match="reads landmarks, which these features do not hold"):
        train_fold(features, CLASSES, "d-1", params(model="htnet", epochs=1, models={"htnet": options}))


def test_a_model_reading_inputs_the_features_lack_is_a_clear_error() -> None:
    features = toy_features()
    assert "frames" not in features.inputs
    with pytest.raises(MerecError, match="reads frames, which these features do not hold.*rerun the features stage"):
        train_fold(features, CLASSES, "d-0", params(model="t3d", epochs=1))


def test_a_frame_volume_model_trains_within_the_same_protocol() -> None:
    features = toy_features()
    frames = np.repeat(features.inputs["face"][:, :, 1:2] * 0.2 + 0.5, 2, axis=1)  # (n, 8, 1, 16, 16) grey
    with_frames = FeatureSet(features.samples, features.inputs | {"frames": frames.astype(np.float32)}, [], [])
    options = {"model": "t3d", "epochs": 3, "models": {"t3d": {"stem": 8, "growth": 4}}}
    result = train_fold(with_frames, CLASSES, "d-1", params(**options))
    assert len(result.predictions) == 6 and result.info["model"] == "t3d"
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]


def test_write_fold_files_and_reload_the_model(tmp_path) -> None:
    features = toy_features()
    result = train_fold(features, CLASSES, "d-0", params(epochs=1))
    write_fold(result, tmp_path / "d-0")
    assert sorted(p.name for p in (tmp_path / "d-0").iterdir()) == [
        "fold.json",
        "history.csv",
        "model.pt",
        "predictions.csv",
    ]
    shapes = {k: tuple(v.shape[1:]) for k, v in features.inputs.items()}
    model = build_model("stst", 3, shapes, STST)
    load_state_dict(model, tmp_path / "d-0" / "model.pt")


def test_fold_errors_are_clear() -> None:
    with pytest.raises(MerecError, match="no samples with features"):
        train_fold(toy_features(), CLASSES, "d-9", params(epochs=1))
    with pytest.raises(MerecError, match=r"train.model: 'resnet'.* is not one of"):
        params(model="resnet")


def test_seeds_and_bad_values_are_clear() -> None:
    assert TrainParams.from_mapping({"seeds": [2, 5]}).seeds == (2, 5)
    assert TrainParams.from_mapping({}).seeds == (0,)
    for bad in ([], [1, 1], [-1], "0"):
        with pytest.raises(MerecError, match="train.seeds"):
            TrainParams.from_mapping({"seeds": bad})
    with pytest.raises(MerecError, match="train.validation.patience"):
        TrainParams.from_mapping({"validation": {"subjects": 1, "patience": 0}})
    with pytest.raises(MerecError, match=r"train.validation: unknown key\(s\) folds"):
        TrainParams.from_mapping({"validation": {"folds": 1}})
    with pytest.raises(MerecError, match="train.schedule"):
        TrainParams.from_mapping({"schedule": "step"})


def test_validation_subjects_come_from_the_training_subjects_only() -> None:
    samples = toy_features(n_subjects=6).samples
    for seed in range(5):
        for fold in sorted(samples["fold"].unique()):
            chosen = validation_subjects(samples, fold, 2, seed)
            held_out = samples.loc[samples["fold"] == fold, "subject"].iloc[0]
            assert len(chosen) == 2 and held_out not in chosen
            assert chosen == validation_subjects(samples, fold, 2, seed)  # deterministic
    draws = {tuple(validation_subjects(samples, "d-0", 2, seed)) for seed in range(10)}
    assert len(draws) > 1  # the seed matters
    assert validation_subjects(samples, "d-0", 0, 0) == []
    with pytest.raises(MerecError, match="leaves no subject to fit on"):
        validation_subjects(samples, "d-0", 5, 0)


def test_without_validation_the_last_epoch_predicts() -> None:
    result = train_fold(toy_features(), CLASSES, "d-0", params(epochs=4))
    info = result.info
    assert info["chosen_epoch"] == info["epochs_run"] == 4 and info["validation_subjects"] == []
    assert list(result.history.columns) == ["epoch", "train_loss", "train_accuracy"]


def test_early_stopping_restores_the_best_validation_epoch() -> None:
    features = toy_features(n_subjects=5, noise=6.0)  # noisy: the validation loss goes up and down
    base = {"epochs": 20, "lr": 0.01, "validation": {"subjects": 1, "patience": 50}, "seeds": [0]}
    result = train_fold(features, CLASSES, "d-0", params(**base))
    history, info = result.history, result.info
    assert {"val_loss", "val_accuracy"} <= set(history.columns)
    best = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert info["chosen_epoch"] == best < info["epochs_run"] == 20
    assert len(info["validation_subjects"]) == 1 and "d/0" not in info["validation_subjects"]
    assert info["n_train"] + info["n_validation"] == 24
    # the restored weights are those of epoch `best`: training only that far gives the same model
    again = train_fold(features, CLASSES, "d-0", params(**base | {"epochs": best}))
    for key, value in again.model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[key])
    assert np.allclose(again.predictions["p_negative"], result.predictions["p_negative"])
    # patience stops training once the validation loss has not improved for that many epochs
    stopped = train_fold(features, CLASSES, "d-0", params(**base | {"validation": {"subjects": 1, "patience": 1}}))
    losses = stopped.history["val_loss"].tolist()
    assert stopped.info["stopped_early"] and len(losses) < 20 and losses[-1] >= min(losses[:-1])
    assert stopped.info["chosen_epoch"] == int(np.argmin(losses)) + 1


def test_early_stopping_never_looks_at_the_held_out_subject() -> None:
    base = params(epochs=6, lr=0.05, validation={"subjects": 1, "patience": 2})
    clean = train_fold(toy_features(), CLASSES, "d-2", base)
    features = toy_features()
    held_out = (features.samples["fold"] == "d-2").to_numpy()
    for key in features.inputs:
        features.inputs[key][held_out] = np.random.default_rng(1).normal(0, 100, features.inputs[key][held_out].shape)
    features.samples.loc[held_out, "label"] = "surprise"
    noisy = train_fold(features, CLASSES, "d-2", base)
    pd.testing.assert_frame_equal(clean.history, noisy.history)
    assert clean.info["chosen_epoch"] == noisy.info["chosen_epoch"]
    for key, value in clean.model.state_dict().items():
        assert torch.equal(value, noisy.model.state_dict()[key])


def write_dataset(root, features: FeatureSet, skipped: dict[str, str] | None = None) -> tuple:
    """samples.csv, classes.json and the features stage's shards, as the earlier stages write them.

    ``skipped`` samples are in the table but were left out by an earlier stage (with the reason).
    """
    samples = features.samples.assign(aus="")
    samples.to_csv(root / "samples.csv", index=False)
    (root / "classes.json").write_text(json.dumps({"classes": CLASSES}))
    arrays = {
        sample: {
            "face": features.inputs["face"][i].astype(np.float16),
            "rois": features.inputs["rois"][i].astype(np.float16),
            "roi_names": np.array(features.roi_names),
        }
        for i, sample in enumerate(samples["sample"])
        if sample not in (skipped or {})
    }
    write_stage(root / "features", "features", arrays, shards=2, skipped=skipped)
    return root / "samples.csv", root / "features"


def test_run_writes_one_folder_per_seed_and_fold(tmp_path) -> None:
    samples_csv, features_dir = write_dataset(tmp_path, toy_features(n_subjects=3, per_class=1))
    p = params(epochs=2, seeds=[0, 7])
    written = run(samples_csv, features_dir, None, tmp_path / "folds", p, "all")
    assert written == [f"seed-{s}/d-{f}" for f in range(3) for s in (0, 7)]
    for path in written:
        info = json.loads((tmp_path / "folds" / path / "fold.json").read_text())
        assert f"seed-{info['seed']}/{info['fold']}" == path
    assert run(samples_csv, features_dir, None, tmp_path / "one", p, "d-1", seed=7) == ["seed-7/d-1"]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["seed-7"]
    with pytest.raises(MerecError, match=r"seed 3 is not in train.seeds \[0, 7\]"):
        run(samples_csv, features_dir, None, tmp_path / "one", p, "d-1", seed=3)


def test_cli_trains_one_fold_with_one_seed(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    samples_csv, features_dir = write_dataset(tmp_path, toy_features(n_subjects=3, per_class=1))
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["train"] = {"model": "stst", "epochs": 1, "seeds": [1, 2], "device": "cpu"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    argv = ["train", "--params", str(tmp_path / "params.yaml"), "--samples", str(samples_csv)]
    argv += ["--features", str(features_dir), "--fold", "d-2"]
    assert cli.main([*argv, "--seed", "2", "--output", str(tmp_path / "folds" / "seed-2" / "d-2")]) == 0
    assert [p.relative_to(tmp_path / "folds").as_posix() for p in (tmp_path / "folds").glob("*/*")] == ["seed-2/d-2"]
    assert cli.main([*argv, "--seed", "5", "--output", str(tmp_path / "folds" / "seed-5" / "d-2")]) == 2
    assert "seed 5 is not in train.seeds [1, 2]" in capsys.readouterr().err
    assert cli.main([*argv, "--seed", "2", "--output", str(tmp_path / "elsewhere")]) == 2
    assert "name the run's folder <folds>/seed-2/d-2" in capsys.readouterr().err


def test_every_fold_in_parallel_processes_equals_one_job_per_fold(tmp_path, monkeypatch) -> None:
    """DVC's --fold all (folds in worker processes) and Snakemake's one job per fold: the same bytes."""
    samples_csv, features_dir = write_dataset(tmp_path, toy_features(n_subjects=3, per_class=2))
    p = params(epochs=3, seeds=[0, 1])
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    run(samples_csv, features_dir, None, tmp_path / "all", p, "all")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for fold in ("d-0", "d-1", "d-2"):
        for seed in (0, 1):
            run(samples_csv, features_dir, None, tmp_path / "one", p, fold, seed=seed)
    for path in sorted((tmp_path / "one").rglob("*")):
        if path.is_file() and path.name != "fold.json":
            assert path.read_bytes() == (tmp_path / "all" / path.relative_to(tmp_path / "one")).read_bytes(), path


def test_a_fold_whose_subject_lost_every_clip_is_refused_with_the_reasons(tmp_path) -> None:
    features = toy_features(n_subjects=3, per_class=1)
    lost = {sample: "face: no face found" for sample in features.samples["sample"] if sample.startswith("s1-")}
    samples_csv, features_dir = write_dataset(tmp_path, features, skipped=lost)
    loaded = load_features(read_samples(samples_csv), features_dir)
    assert loaded.missing == lost
    with pytest.raises(MerecError, match="fold 'd-1' has no samples with features: every clip of its subject"):
        run(samples_csv, features_dir, None, tmp_path / "folds", params(epochs=1), "d-1", seed=0)


# ---------------------------------------------------------------------------------------------
# determinism of a training job run twice (the whole pipeline: tests/test_interruption.py)


def test_two_training_processes_write_identical_folds(tmp_path: Path) -> None:
    from tests.test_leakage import build_dataset

    root = build_dataset(tmp_path / "data", poisoned=False)
    params = tmp_path / "params.yaml"
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["train"].update(epochs=5, device="cpu")
    params.write_text(yaml.safe_dump(values))
    outputs = []
    for name in ("first", "second"):
        out = tmp_path / name
        command = [
            sys.executable, "-m", "merec", "train", "--params", str(params), "--samples", str(root / "samples.csv"),
            "--features", str(root / "features"), "--au-graph", str(root / "au_graph"), "--output", str(out),
            "--fold", "d-1",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(out)
    files = sorted(p.relative_to(outputs[0]) for p in outputs[0].rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"model.pt", "predictions.csv", "history.csv", "fold.json"}
    for relative in files:
        first, second = (out / relative for out in outputs)
        if relative.name == "fold.json":
            a, b = (json.loads(p.read_text()) for p in (first, second))
            a.pop("train_seconds"), b.pop("train_seconds")
            assert a == b
        else:
            assert first.read_bytes() == second.read_bytes(), relative


def test_the_mdmo_baseline_trains_in_closed_form_within_the_same_protocol(tmp_path) -> None:
    features = toy_features(noise=0.0)
    rng = np.random.default_rng(1)
    rois = rng.normal(0, 0.05, features.inputs["rois"].shape).astype(np.float32)
    for i, label in enumerate(features.samples["label"]):
        angle = 2 * np.pi * CLASSES.index(label) / 3  # each class moves ROI 0 its own way
        rois[i, 0, :, 0] += np.cos(angle)
        rois[i, 0, :, 1] += np.sin(angle)
    features.inputs["rois"] = rois
    result = train_fold(features, CLASSES, "d-1", params(model="mdmo"))
    assert (result.predictions["predicted"] == result.predictions["label"]).all()
    assert len(result.history) == 1 and result.info["epochs_run"] == 1
    assert "d/1" not in result.info["train_subjects"]
    write_fold(result, tmp_path / "fold")
    again = build_model("mdmo", 3, {"rois": rois.shape[1:]})
    again.load_state_dict(torch.load(tmp_path / "fold" / "model.pt", weights_only=True))
    assert torch.equal(again.weight, result.model.weight)


def test_the_shuffled_label_control_falls_to_chance_and_keeps_the_true_test_labels() -> None:
    features = toy_features(n_subjects=4, per_class=4)
    real = pd.concat([train_fold(features, CLASSES, f"d-{s}", params(epochs=8)).predictions for s in range(4)])
    assert (real["predicted"] == real["label"]).mean() == 1.0
    shuffled = pd.concat(
        [train_fold(features, CLASSES, f"d-{s}", params(epochs=8, labels="shuffled")).predictions for s in range(4)]
    )
    assert shuffled["label"].tolist() == real["label"].tolist()  # the held-out labels are the true ones
    accuracy = (shuffled["predicted"] == shuffled["label"]).mean()
    assert accuracy < 0.6  # 48 clips, 3 classes: chance is 1/3; learning the real labels gives 1.0


def test_the_run_on_every_subject_fits_them_all_and_predicts_nothing() -> None:
    from merec.datasets.ids import ALL_SUBJECTS

    features = toy_features()
    result = train_fold(features, CLASSES, ALL_SUBJECTS, params())
    assert result.predictions.empty and result.info["n_test"] == 0
    assert result.info["n_train"] == len(features.samples)
    assert result.info["train_subjects"] == sorted(features.samples["subject"].unique())
    assert set(result.info["input_shapes"]) >= {"apex"} and "roi_names" in result.info["model_context"]
