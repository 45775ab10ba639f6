"""LOSO training: honest folds, determinism, learning, and what a fold writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from merec.checkpoints import load_state_dict
from merec.io import MerecError
from merec.models import build_model
from merec.train import (
    FeatureSet,
    TrainParams,
    channel_scales,
    class_weights,
    flip_batch,
    mirror_partner,
    train_fold,
    write_fold,
)

CLASSES = ["negative", "positive", "surprise"]


def toy_features(n_subjects: int = 4, per_class: int = 2, seed: int = 0) -> FeatureSet:
    """Separable toy flow: each class moves a different region of the face."""
    rng = np.random.default_rng(seed)
    rows, faces = [], []
    for s in range(n_subjects):
        for k, label in enumerate(CLASSES):
            for i in range(per_class):
                face = rng.normal(0, 0.05, (4, 3, 16, 16)).astype(np.float32)
                face[:, 1, 4 * k : 4 * k + 4, :] += 1.0  # v moves in a class-specific band
                faces.append(face)
                rows.append({"sample": f"s{s}-{label}-{i}", "subject": f"d/{s}", "fold": f"d-{s}", "label": label})
    face = np.stack(faces)
    inputs = {"face": face, "apex": face[:, -1], "rois": np.zeros((len(face), 2, 4, 3, 8, 8), np.float32)}
    return FeatureSet(pd.DataFrame(rows), inputs, ["left_brow", "right_brow"], [])


def params(**overrides) -> TrainParams:
    base = {"epochs": 30, "batch_size": 8, "lr": 0.01, "device": "cpu", "models": {"stst": {"dropout": 0.0}}}
    return TrainParams.from_mapping(base | overrides)


def test_training_learns_a_separable_problem_and_predicts_only_the_held_out_subject() -> None:
    result = train_fold(toy_features(), CLASSES, "d-1", params())
    predictions = result["predictions"]
    assert set(predictions["fold"]) == {"d-1"} and len(predictions) == 6
    assert (predictions["predicted"] == predictions["label"]).mean() == 1.0
    history = result["history"]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert result["info"]["train_subjects"] == ["d/0", "d/2", "d/3"]


def test_training_is_deterministic_under_a_seed() -> None:
    first = train_fold(toy_features(), CLASSES, "d-0", params(epochs=3))
    second = train_fold(toy_features(), CLASSES, "d-0", params(epochs=3))
    assert np.array_equal(first["predictions"]["p_negative"], second["predictions"]["p_negative"])
    for key, value in first["model"].state_dict().items():
        assert torch.equal(value, second["model"].state_dict()[key])


def test_scaling_uses_training_rows_only() -> None:
    features = toy_features()
    features.inputs["apex"][features.samples["fold"] == "d-3"] *= 1000  # an outlier held-out subject
    train_rows = np.flatnonzero(features.samples["fold"] != "d-3")
    scales = channel_scales(features.inputs, train_rows)
    assert scales["apex"].max() < 5
    result = train_fold(features, CLASSES, "d-3", params(epochs=1))
    assert max(result["info"]["input_scales"]["apex"]) < 5


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
    model = build_model("stst", 3, shapes, {"dropout": 0.0})
    load_state_dict(model, tmp_path / "d-0" / "model.pt")


def test_fold_errors_are_clear() -> None:
    with pytest.raises(MerecError, match="no samples with features"):
        train_fold(toy_features(), CLASSES, "d-9", params(epochs=1))
    with pytest.raises(MerecError, match="unknown model"):
        train_fold(toy_features(), CLASSES, "d-0", params(model="resnet"))
