"""Leakage: nothing about the held-out subject reaches that fold's training.

A toy dataset of four subjects is written as the pipeline's files (``samples.csv``,
``classes.json``, per-sample feature archives). Subject ``d/0`` is held out. Its "poisoned" twin
replaces everything about ``d/0`` and nothing else: its flow becomes values of +-10^4, its labels
all become ``negative`` and its AUs all nine graph AUs. The data are built so that any use of the
held-out subject changes the training (the controls below prove each one):

* normalisation statistics: the poisoned values move any statistic that includes them;
* class mapping or class weights: ``surprise`` occurs only in the held-out subject, and not at
  all in its poisoned twin;
* AU statistics: the AU graph of all subjects differs between the twins;
* epoch or checkpoint selection: the held-out score per epoch peaks at a different epoch.

The fold's training job (``merec.train.run`` for fold ``d-0``, as ``merec train`` runs it) must
then give a bit-identical model, history and scaling on both twins, read no other fold's AU graph,
and feed the held-out samples to the model only in evaluation mode after the last training step.
Their predictions differ, so the held-out data does reach the one place it belongs.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import merec.train as train
from merec import au_graph
from merec.io import write_json
from tests.helpers.stages import write_stage

CLASSES = ["negative", "positive", "surprise"]
HELD_OUT = "d-0"
AUS = [1, 2, 4, 10, 12, 14, 15, 17, 25]
CLASS_AUS = {"negative": "4+7", "positive": "R12+L14", "surprise": "1+2+5B"}
FRAMES, FACE, ROI = 2, 16, 8
POISON = 1e4
VOLATILE = ("train_seconds",)


def build_dataset(root: Path, poisoned: bool) -> Path:
    """Write the toy dataset's stage files under ``root``; only subject d/0 differs between twins."""
    rng = np.random.default_rng(0)
    poison_rng = np.random.default_rng(1)
    rows, arrays = [], {}
    for subject in range(4):
        held_out = subject == 0
        labels = ["negative", "positive", "surprise", "surprise"] if held_out else ["negative", "positive"] * 3
        for index, label in enumerate(labels):
            k = CLASSES.index(label)
            face = rng.normal(0.0, 0.05, (FRAMES, 3, FACE, FACE))
            face[:, 1, 4 * k : 4 * k + 4, :] += 1.0  # vertical motion in a class-specific band
            aus = CLASS_AUS[label]
            if held_out and poisoned:
                face = poison_rng.uniform(-POISON, POISON, face.shape)
                label, aus = "negative", "+".join(map(str, AUS))
            sample = f"d-{subject}-{index}"
            rois = np.stack([face[:, :, :ROI, :ROI], face[:, :, ROI:, ROI:]])
            arrays[sample] = {
                "face": face.astype(np.float16),
                "rois": rois.astype(np.float16),
                "roi_names": np.array(["left_brow", "right_brow"]),
                "roi_boxes": np.array([[0, 0, ROI, ROI], [ROI, ROI, FACE, FACE]]),
                "landmarks": np.zeros((68, 2), np.float32),
            }
            rows.append({
                "dataset": "d", "subject": f"d/{subject}", "fold": f"d-{subject}", "sample": sample,
                "frames_dir": f"raw/{sample}", "onset": 1, "apex": 2, "offset": 3, "emotion": label,
                "label": label, "aus": aus, "action_units": aus,
            })  # fmt: skip
    write_stage(root / "features", "features", arrays, shards=2)
    pd.DataFrame(rows).to_csv(root / "samples.csv", index=False)
    write_json(root / "classes.json", {"label_set": "3class", "classes": CLASSES})
    au_graph.run(root / "samples.csv", root / "au_graph", au_graph.AuGraphParams.from_mapping({"aus": AUS}))
    return root


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("leakage")
    return build_dataset(base / "clean", poisoned=False), build_dataset(base / "poisoned", poisoned=True)


@dataclass
class Job:
    """What one training job produced and what it touched."""

    state: dict[str, torch.Tensor]
    history: pd.DataFrame
    info: dict[str, Any]
    predictions: pd.DataFrame
    opened: list[Path] = field(default_factory=list)
    forwards: list[tuple[bool, bool]] = field(default_factory=list)  # (training mode, saw poison)


def train_params(**overrides: Any) -> train.TrainParams:
    values = {
        "epochs": 6, "batch_size": 4, "lr": 0.01, "seeds": [0], "device": "cpu",
        "models": {"stst": {"dropout": 0.0}, "aurel": {"dropout": 0.0}},
    } | overrides  # fmt: skip
    return train.TrainParams.from_mapping(values)


def _spied_open(real: Callable[..., Any], opened: list[Path]) -> Callable[..., Any]:
    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path):
            opened.append(Path(file).resolve())
        return real(file, *args, **kwargs)

    return spy


def run_job(root: Path, out: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Job:
    """Run fold d-0's training job on ``root`` with file and model-input spies."""
    opened: list[Path] = []
    forwards: list[tuple[bool, bool]] = []
    real_build = train.build_model

    def build_model(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = real_build(*args, **kwargs)

        def record(module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
            batch = inputs[0]
            poisoned = any(
                bool(value.detach().abs().max() > POISON / 100)
                for key, value in batch.items()
                if key in train.INPUT_KEYS and value.numel()
            )
            forwards.append((module.training, poisoned))

        model.register_forward_pre_hook(record)
        return model

    with monkeypatch.context() as patch:
        patch.setattr(train, "build_model", build_model)
        patch.setattr(builtins, "open", _spied_open(builtins.open, opened))
        patch.setattr(io, "open", _spied_open(io.open, opened))
        train.run(root / "samples.csv", root / "features", root / "au_graph", out, train_params(**overrides), HELD_OUT)
    (fold,) = {path.parent for path in out.rglob("model.pt")}
    info = json.loads((fold / "fold.json").read_text())
    for key in VOLATILE:
        info.pop(key, None)
    return Job(
        state=torch.load(fold / "model.pt", weights_only=True),
        history=pd.read_csv(fold / "history.csv"),
        info=info,
        predictions=pd.read_csv(fold / "predictions.csv"),
        opened=opened,
        forwards=forwards,
    )


def assert_same_training(a: Job, b: Job) -> None:
    """Bit-identical model, per-epoch history and fold record (scaling, classes, sizes, epochs)."""
    assert a.state.keys() == b.state.keys()
    for key, value in a.state.items():
        assert value.shape == b.state[key].shape and torch.equal(value, b.state[key]), f"weights differ: {key}"
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    assert a.info == b.info


def model_variants() -> Iterator[Any]:
    yield pytest.param({}, id="stst-last-epoch")
    if "validation" in train.TrainParams.__dataclass_fields__:
        yield pytest.param({"validation": {"subjects": 1, "patience": 2}, "epochs": 8}, id="stst-validation")
    if importlib.util.find_spec("merec.models.aurel") is not None:
        yield pytest.param({"model": "aurel"}, id="aurel-au-graph")


@pytest.mark.parametrize("overrides", list(model_variants()))
def test_held_out_subject_never_reaches_its_folds_training(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict
) -> None:
    clean_root, poisoned_root = twins
    clean = run_job(clean_root, tmp_path / "clean", monkeypatch, **overrides)
    poisoned = run_job(poisoned_root, tmp_path / "poisoned", monkeypatch, **overrides)

    assert_same_training(clean, poisoned)
    assert "d/0" not in clean.info["train_subjects"] + clean.info.get("validation_subjects", [])
    # the held-out data reaches the prediction, and only the prediction
    assert not np.allclose(clean.predictions.filter(like="p_"), poisoned.predictions.filter(like="p_"))
    for job in (clean, poisoned):
        last_training_step = max(i for i, (training, _) in enumerate(job.forwards) if training)
        assert not any(poison for _, poison in job.forwards[: last_training_step + 1])
    assert any(poison and not training for training, poison in poisoned.forwards)
    # the job reads its own fold's AU graph and no other (another fold's graph counts subject d/0)
    graphs = {path.name for path in poisoned.opened if path.parent.name == "au_graph"}
    assert graphs == {f"{HELD_OUT}.npz"}


def test_the_fold_au_graph_ignores_the_held_out_subject(twins: tuple[Path, Path]) -> None:
    clean_root, poisoned_root = twins
    clean = np.load(clean_root / "au_graph" / f"{HELD_OUT}.npz")
    poisoned = np.load(poisoned_root / "au_graph" / f"{HELD_OUT}.npz")
    for key in ("adjacency", "counts", "train_subjects", "held_out"):
        assert np.array_equal(clean[key], poisoned[key]), key
    # control: the graph of every subject together does change
    everyone = [
        au_graph.cooccurrence(au_graph.au_matrix(pd.read_csv(root / "samples.csv")["aus"].tolist(), AUS))[1]
        for root in twins
    ]
    assert not np.array_equal(*everyone)
    # and the other folds' graphs, which include d/0, differ too (the job must not read them)
    assert not np.array_equal(
        np.load(clean_root / "au_graph" / "d-1.npz")["adjacency"],
        np.load(poisoned_root / "au_graph" / "d-1.npz")["adjacency"],
    )


# ---------------------------------------------------------------------------------------------
# controls: the twins are built so that each kind of leak WOULD change the training


def test_control_normalisation_over_all_subjects_would_be_caught(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = train.channel_scales
    monkeypatch.setattr(train, "channel_scales", lambda inputs, rows: real(inputs, np.arange(len(inputs["face"]))))
    jobs = [run_job(root, tmp_path / root.name, monkeypatch) for root in twins]
    with pytest.raises(AssertionError):
        assert_same_training(*jobs)


def test_control_class_mapping_from_the_data_would_be_caught(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train, "read_classes", lambda samples_csv: sorted(pd.read_csv(samples_csv)["label"].unique()))
    jobs = [run_job(root, tmp_path / root.name, monkeypatch) for root in twins]
    with pytest.raises(AssertionError):
        assert_same_training(*jobs)


def test_control_class_weights_over_all_subjects_would_be_caught(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone: dict[str, np.ndarray] = {}
    real = train.class_weights

    def leaky(labels: np.ndarray, n_classes: int, mode: str) -> torch.Tensor:
        return real(everyone["labels"], n_classes, mode)

    monkeypatch.setattr(train, "class_weights", leaky)
    jobs = []
    for root in twins:
        labels = pd.read_csv(root / "samples.csv")["label"].map(CLASSES.index).to_numpy()
        everyone["labels"] = labels
        jobs.append(run_job(root, tmp_path / root.name, monkeypatch))
    with pytest.raises(AssertionError):
        assert_same_training(*jobs)


def test_control_choosing_the_epoch_on_the_held_out_subject_would_be_caught(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held-out loss per epoch is lowest at different epochs on the twins, so early stopping or
    checkpoint selection on it would give different models; the real job's model is the same on both."""
    best_epoch, models = [], []
    for root in twins:
        losses, states = [], []
        for epoch in range(1, 7):
            job = run_job(root, tmp_path / f"{root.name}-{epoch}", monkeypatch, epochs=epoch)
            truth = [job.predictions.loc[i, f"p_{label}"] for i, label in enumerate(job.predictions["label"])]
            losses.append(float(-np.log(np.maximum(truth, 1e-12)).mean()))
            states.append(job.state)
        best_epoch.append(int(np.argmin(losses)))
        models.append(states[best_epoch[-1]])
    assert best_epoch[0] != best_epoch[1], best_epoch
    assert any(not torch.equal(models[0][key], models[1][key]) for key in models[0])
