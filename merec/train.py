"""Training stage: one leave-one-subject-out fold at a time.

Fold ``f`` trains on every sample whose ``fold`` differs from ``f`` and predicts the held-out
subject's samples with the model of the LAST epoch: nothing (input scaling, class weights, the AU
graph, the number of epochs) is computed from or chosen on the held-out subject. Outputs in
``<output_dir>/<fold>/``: ``model.pt`` (state dict), ``predictions.csv`` (one row per held-out
sample with class probabilities), ``history.csv`` (per-epoch training loss and accuracy) and
``fold.json`` (seed, sizes, scaling, timing).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from merec.checkpoints import save_state_dict
from merec.io import MerecError, PathLike, atomic_dir, load_npz, write_csv, write_json
from merec.models import build_model
from merec.runtime import configure_torch, progress, resolve_device, seed_everything

LOG = logging.getLogger("merec.train")
INPUT_KEYS = ("apex", "face", "rois")


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` section of params.yaml."""

    model: str = "stst"
    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    class_weighting: str = "balanced"
    augment_flip: bool = True
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainParams:
        return cls(**dict(values))


@dataclass
class FeatureSet:
    """Model inputs of the samples that have features, aligned with ``samples``' rows."""

    samples: pd.DataFrame
    inputs: dict[str, np.ndarray]
    roi_names: list[str]
    missing: list[str]


def read_samples(samples_csv: PathLike) -> pd.DataFrame:
    """The samples table with string ids."""
    return pd.read_csv(samples_csv, dtype={"subject": str, "fold": str, "sample": str, "aus": str, "label": str})


def read_classes(samples_csv: PathLike) -> list[str]:
    """Fixed class order written by the ingest stage next to the samples table."""
    path = Path(samples_csv).with_name("classes.json")
    if not path.is_file():
        raise MerecError(f"{path} is missing; rerun the ingest stage")
    return list(json.loads(path.read_text())["classes"])


def load_features(samples: pd.DataFrame, features_dir: PathLike) -> FeatureSet:
    """Stack the feature arrays of every sample that has a features file."""
    folder = Path(features_dir)
    if not folder.is_dir():
        raise MerecError(f"{folder}: features directory is missing; run the features stage first")
    kept, missing, arrays = [], [], {key: [] for key in INPUT_KEYS}
    roi_names: list[str] = []
    for index, row in samples.iterrows():
        file = folder / f"{row['sample']}.npz"
        if not file.is_file():
            missing.append(row["sample"])
            continue
        data = load_npz(file)
        arrays["face"].append(data["face"].astype(np.float32))
        arrays["apex"].append(data["face"][-1].astype(np.float32))
        arrays["rois"].append(data["rois"].astype(np.float32))
        roi_names = [str(n) for n in data["roi_names"]]
        kept.append(index)
    if not kept:
        raise MerecError(f"{folder}: no features for any sample of the table; check the earlier stages")
    if missing:
        LOG.warning("%d samples have no features (skipped earlier): %s", len(missing), ", ".join(missing))
    inputs = {key: np.stack(values) for key, values in arrays.items()}
    return FeatureSet(samples.loc[kept].reset_index(drop=True), inputs, roi_names, missing)


def channel_scales(inputs: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel standard deviation of each input over the given (training) rows."""
    scales = {}
    for key, value in inputs.items():
        subset = value[rows]
        channel_axis = subset.ndim - 3  # (..., 3, H, W)
        axes = tuple(a for a in range(subset.ndim) if a != channel_axis)
        scales[key] = np.maximum(subset.std(axis=axes), 1e-6).astype(np.float32)
    return scales


def _scale(value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return value / scale.reshape(-1, 1, 1)


def mirror_partner(names: Sequence[str]) -> list[int]:
    """Index of the left/right counterpart of each ROI (itself when it has none)."""
    swapped = [n.replace("left", "\0").replace("right", "left").replace("\0", "right") for n in names]
    return [names.index(s) if s in names else i for i, s in enumerate(swapped)]


def flip_batch(batch: dict[str, torch.Tensor], partners: Sequence[int]) -> dict[str, torch.Tensor]:
    """Mirror a batch horizontally: flip x, negate u, swap left/right ROIs."""
    out = {}
    for key, value in batch.items():
        if key not in INPUT_KEYS:
            out[key] = value
            continue
        flipped = torch.flip(value, dims=[-1]).clone()
        flipped[..., 0, :, :] = -flipped[..., 0, :, :]
        if key == "rois":
            flipped = flipped[:, list(partners)]
        out[key] = flipped
    return out


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> torch.Tensor:
    """``balanced``: n / (K * count) over the training labels; ``none``: ones."""
    if mode == "none":
        return torch.ones(n_classes)
    if mode != "balanced":
        raise MerecError(f"train.class_weighting must be 'none' or 'balanced', got {mode!r}")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def _to_tensors(inputs: Mapping[str, np.ndarray], rows: np.ndarray, scales: Mapping[str, np.ndarray], device: str):
    return {key: torch.from_numpy(_scale(value[rows], scales[key])).to(device) for key, value in inputs.items()}


def train_fold(
    features: FeatureSet,
    classes: Sequence[str],
    fold: str,
    params: TrainParams,
    adjacency: np.ndarray | None = None,
) -> dict[str, Any]:
    """Train on every fold but ``fold`` and predict ``fold``; returns model, predictions, history, info."""
    samples = features.samples
    unknown = sorted(set(samples["label"]) - set(classes))
    if unknown:
        raise MerecError(f"labels {unknown} are not among the classes {list(classes)}; rerun ingest")
    test_rows = np.flatnonzero(samples["fold"].to_numpy() == fold)
    train_rows = np.flatnonzero(samples["fold"].to_numpy() != fold)
    if len(test_rows) == 0:
        raise MerecError(
            f"fold {fold!r} has no samples with features; it was skipped earlier (see the face stage report)"
        )
    if len(train_rows) == 0:
        raise MerecError(f"fold {fold!r}: no training samples left; LOSO needs at least two subjects")
    device = resolve_device(params.device)
    seed_everything(params.seed, device)
    label_index = {name: k for k, name in enumerate(classes)}
    labels = samples["label"].map(label_index).to_numpy()
    scales = channel_scales(features.inputs, train_rows)
    train_inputs = _to_tensors(features.inputs, train_rows, scales, device)
    train_labels = torch.from_numpy(labels[train_rows]).to(device)
    extras = {} if adjacency is None else {"adjacency": torch.from_numpy(adjacency).float().to(device)}
    shapes = {key: tuple(value.shape[1:]) for key, value in features.inputs.items()}
    model = build_model(params.model, len(classes), shapes, params.models.get(params.model, {})).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    criterion = nn.CrossEntropyLoss(
        weight=class_weights(labels[train_rows], len(classes), params.class_weighting).to(device)
    )
    generator = torch.Generator().manual_seed(params.seed)
    partners = mirror_partner(features.roi_names)
    history = []
    started = time.perf_counter()
    for epoch in progress(range(1, params.epochs + 1), f"train {fold}"):
        model.train()
        order = torch.randperm(len(train_rows), generator=generator)
        flips = torch.rand(len(order), generator=generator) < 0.5
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), params.batch_size):
            idx = order[start : start + params.batch_size].to(device)
            batch = {key: value[idx] for key, value in train_inputs.items()} | extras
            if params.augment_flip:
                flip = flips[start : start + params.batch_size].to(device)
                mirrored = flip_batch(batch, partners)
                batch = {
                    k: torch.where(flip.view(-1, *[1] * (v.ndim - 1)), mirrored[k], v) if k in INPUT_KEYS else v
                    for k, v in batch.items()
                }
            optimiser.zero_grad()
            logits = model(batch)
            loss = criterion(logits, train_labels[idx])
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == train_labels[idx]).sum())
        history.append({"epoch": epoch, "train_loss": total_loss / len(order), "train_accuracy": correct / len(order)})
    model.eval()
    with torch.inference_mode():
        test_inputs = _to_tensors(features.inputs, test_rows, scales, device) | extras
        probabilities = torch.softmax(model(test_inputs), dim=1).cpu().numpy()
    predictions = samples.iloc[test_rows][["sample", "subject", "fold", "label"]].reset_index(drop=True)
    predictions["predicted"] = [classes[k] for k in probabilities.argmax(axis=1)]
    for k, name in enumerate(classes):
        predictions[f"p_{name}"] = probabilities[:, k]
    info = {
        "fold": fold,
        "model": params.model,
        "seed": params.seed,
        "device": device,
        "params": asdict(params),
        "classes": list(classes),
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "train_subjects": sorted(samples.iloc[train_rows]["subject"].unique()),
        "input_scales": {k: v.tolist() for k, v in scales.items()},
        "train_seconds": round(time.perf_counter() - started, 3),
        "torch": torch.__version__,
    }
    return {"model": model, "predictions": predictions, "history": pd.DataFrame(history), "info": info}


def write_fold(result: Mapping[str, Any], output_dir: PathLike) -> None:
    """Write a trained fold's files into ``output_dir`` atomically."""
    with atomic_dir(output_dir) as tmp:
        save_state_dict(result["model"], Path(tmp) / "model.pt")
        write_csv(Path(tmp) / "predictions.csv", result["predictions"])
        write_csv(Path(tmp) / "history.csv", result["history"])
        write_json(Path(tmp) / "fold.json", result["info"])


def run(
    samples_csv: PathLike,
    features_dir: PathLike,
    au_graph_dir: PathLike | None,
    output_dir: PathLike,
    fold: str,
    params: TrainParams,
) -> list[str]:
    """Train ``fold`` (or every fold with ``all``) and write ``<output_dir>/<fold>/``."""
    configure_torch()
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    features = load_features(samples, features_dir)
    folds = sorted(samples["fold"].unique()) if fold == "all" else [fold]
    if fold != "all" and fold not in set(samples["fold"]):
        raise MerecError(
            f"fold {fold!r} is not in {samples_csv}; folds are: {', '.join(sorted(samples['fold'].unique()))}"
        )
    for name in folds:
        adjacency = None
        if au_graph_dir is not None:
            adjacency = load_npz(Path(au_graph_dir) / f"{name}.npz")["adjacency"]
        result = train_fold(features, classes, name, params, adjacency)
        write_fold(result, Path(output_dir) / name)
        LOG.info(
            "fold %s: trained on %d samples, predicted %d", name, result["info"]["n_train"], result["info"]["n_test"]
        )
    return folds
