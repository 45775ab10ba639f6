"""Training stage: one leave-one-subject-out fold (and seed) at a time.

Fold ``f`` trains on every sample whose ``fold`` differs from ``f`` and predicts the held-out
subject's samples. Nothing is computed from or chosen on the held-out subject: input scaling,
class weights, the AU graph and the epoch come from the fold's training subjects only.

* By default the model of the LAST epoch of a fixed schedule (``train.epochs``) predicts.
* With ``train.validation.subjects: n > 0``, ``n`` of the fold's TRAINING subjects (drawn from the
  seed and the fold name, never the held-out one) are set aside for validation; training stops
  after ``patience`` epochs without a lower validation loss (or at ``epochs``) and the weights of
  the best validation epoch are restored. Scaling and class weights then come from the remaining
  (fit) subjects.

``train.seeds`` lists the seeds; each (seed, fold) pair is one run, written to
``<output_dir>/seed-<seed>/<fold>/``: ``model.pt`` (state dict), ``predictions.csv`` (one row per
held-out sample with class probabilities), ``history.csv`` (per epoch: ``train_loss``,
``train_accuracy`` and, with validation, ``val_loss``, ``val_accuracy``) and ``fold.json`` (seed,
chosen epoch, validation subjects, sizes, scaling, timing).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from merec.checkpoints import save_state_dict
from merec.datasets.ingest import read_classes, read_samples
from merec.io import MerecError, PathLike, atomic_dir, load_npz, write_csv, write_json
from merec.models import build_model
from merec.runtime import configure_torch, progress, resolve_device, seed_everything

LOG = logging.getLogger("merec.train")
INPUT_KEYS = ("apex", "face", "rois")
SEED_PREFIX = "seed-"
SCHEDULES = ("constant", "cosine")


def seed_dir_name(seed: int) -> str:
    """Folder of one seed's folds: ``seed-<seed>``."""
    return f"{SEED_PREFIX}{seed}"


def fold_dir(output_dir: PathLike, seed: int, fold: str) -> Path:
    """Where the run of ``fold`` with ``seed`` is written: ``<output_dir>/seed-<seed>/<fold>``."""
    return Path(output_dir) / seed_dir_name(seed) / fold


@dataclass(frozen=True)
class ValidationParams:
    """``train.validation``: early stopping on training subjects (``subjects: 0`` = off)."""

    subjects: int = 0
    patience: int = 10

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ValidationParams:
        values = dict(values or {})
        unknown = sorted(set(values) - {"subjects", "patience"})
        if unknown:
            raise MerecError(f"train.validation: unknown key(s) {', '.join(unknown)}; allowed: patience, subjects")
        made = cls(**values)
        if not isinstance(made.subjects, int) or made.subjects < 0:
            raise MerecError(f"train.validation.subjects must be an integer >= 0 (0 = off), got {made.subjects!r}")
        if not isinstance(made.patience, int) or made.patience < 1:
            raise MerecError(f"train.validation.patience must be an integer >= 1, got {made.patience!r}")
        return made


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` section of params.yaml (``seed: S`` is read as ``seeds: [S]``)."""

    model: str = "stst"
    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    class_weighting: str = "balanced"
    augment_flip: bool = True
    schedule: str = "constant"
    label_smoothing: float = 0.0
    validation: ValidationParams = field(default_factory=ValidationParams)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainParams:
        values = dict(values)
        if "seed" in values:
            if "seeds" in values:
                raise MerecError("train: give either seed (one seed) or seeds (a list), not both")
            values["seeds"] = [values.pop("seed")]
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise MerecError(f"train: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        seeds = values.get("seeds", [0])
        if (
            isinstance(seeds, str | bytes)
            or not isinstance(seeds, Sequence)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
            or len(set(seeds)) != len(seeds)
        ):
            raise MerecError(f"train.seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
        values["seeds"] = tuple(int(s) for s in seeds)
        values["validation"] = ValidationParams.from_mapping(values.get("validation"))
        made = cls(**values)
        if made.schedule not in SCHEDULES:
            raise MerecError(f"train.schedule must be one of {', '.join(SCHEDULES)}, got {made.schedule!r}")
        if not 0 <= made.label_smoothing < 1:
            raise MerecError(f"train.label_smoothing must be in [0, 1), got {made.label_smoothing!r}")
        return made

    @property
    def seed(self) -> int:
        """The first seed (what a single run uses when none is named)."""
        return self.seeds[0]


@dataclass
class FeatureSet:
    """Model inputs of the samples that have features, aligned with ``samples``' rows."""

    samples: pd.DataFrame
    inputs: dict[str, np.ndarray]
    roi_names: list[str]
    missing: list[str]


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


def validation_subjects(samples: pd.DataFrame, fold: str, n: int, seed: int) -> list[str]:
    """``n`` training subjects of ``fold`` for validation, drawn from the seed and the fold name.

    The held-out subject (``fold``) is never among the candidates; at least one training subject
    must remain for fitting.
    """
    if n <= 0:
        return []
    candidates = sorted(samples.loc[samples["fold"] != fold, "subject"].unique())
    if n >= len(candidates):
        raise MerecError(
            f"train.validation.subjects={n} leaves no subject to fit on: fold {fold!r} has {len(candidates)} "
            "training subject(s); lower it (0 turns validation off)"
        )
    rng = np.random.default_rng([seed, zlib.crc32(fold.encode())])
    return sorted(rng.choice(candidates, size=n, replace=False).tolist())


def _learning_rate(params: TrainParams, epoch: int) -> float:
    """Learning rate of 1-based ``epoch``: constant, or cosine from ``lr`` towards ``lr / 100``."""
    if params.schedule == "cosine" and params.epochs > 1:
        progress_ = (epoch - 1) / (params.epochs - 1)
        return params.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * progress_)))
    return params.lr


def _evaluate_rows(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    criterion: nn.Module,
    batch_size: int,
) -> tuple[float, float]:
    """Loss and accuracy of ``model`` (eval mode) on prepared inputs."""
    model.eval()
    total_loss, correct, n = 0.0, 0, len(labels)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = {k: (v[start : start + batch_size] if k in INPUT_KEYS else v) for k, v in inputs.items()}
            logits = model(batch)
            target = labels[start : start + batch_size]
            total_loss += float(criterion(logits, target)) * len(target)
            correct += int((logits.argmax(1) == target).sum())
    return total_loss / n, correct / n


def train_fold(
    features: FeatureSet,
    classes: Sequence[str],
    fold: str,
    params: TrainParams,
    adjacency: np.ndarray | None = None,
    seed: int | None = None,
    aus: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Train on every fold but ``fold`` and predict ``fold``; returns model, predictions, history, info.

    ``seed`` defaults to the first of ``params.seeds``; ``adjacency`` (K, K) is the fold's AU graph
    and ``aus`` its node AU numbers (used by ``aurel``).
    """
    seed = params.seed if seed is None else int(seed)
    samples = features.samples
    unknown = sorted(set(samples["label"]) - set(classes))
    if unknown:
        raise MerecError(f"labels {unknown} are not among the classes {list(classes)}; rerun ingest")
    folds = samples["fold"].to_numpy()
    test_rows = np.flatnonzero(folds == fold)
    train_rows = np.flatnonzero(folds != fold)
    if len(test_rows) == 0:
        raise MerecError(
            f"fold {fold!r} has no samples with features; it was skipped earlier (see the face stage report)"
        )
    if len(train_rows) == 0:
        raise MerecError(f"fold {fold!r}: no training samples left; LOSO needs at least two subjects")
    held_out = set(samples.iloc[test_rows]["subject"])
    val_subjects = validation_subjects(samples, fold, params.validation.subjects, seed)
    is_val = samples["subject"].isin(val_subjects).to_numpy()
    val_rows = np.intersect1d(train_rows, np.flatnonzero(is_val))
    fit_rows = np.setdiff1d(train_rows, val_rows)
    if held_out & set(samples.iloc[np.concatenate([fit_rows, val_rows])]["subject"]):  # pragma: no cover
        raise RuntimeError(f"fold {fold!r}: the held-out subject leaked into training or validation")
    device = resolve_device(params.device)
    seed_everything(seed, device)
    label_index = {name: k for k, name in enumerate(classes)}
    labels = samples["label"].map(label_index).to_numpy()
    extras = {} if adjacency is None else {"adjacency": torch.from_numpy(np.asarray(adjacency)).float().to(device)}
    shapes = {key: tuple(value.shape[1:]) for key, value in features.inputs.items()}
    if adjacency is not None:
        shapes["adjacency"] = tuple(np.asarray(adjacency).shape)
    context = {"roi_names": list(features.roi_names), "aus": None if aus is None else [int(a) for a in aus]}
    model = build_model(params.model, len(classes), shapes, params.models.get(params.model, {}), context).to(device)
    scales = channel_scales(features.inputs, fit_rows)
    inputs = {key: features.inputs[key] for key in getattr(model, "inputs", INPUT_KEYS)}  # what the model reads
    fit_inputs = _to_tensors(inputs, fit_rows, scales, device)
    fit_labels = torch.from_numpy(labels[fit_rows]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    criterion = nn.CrossEntropyLoss(
        weight=class_weights(labels[fit_rows], len(classes), params.class_weighting).to(device),
        label_smoothing=params.label_smoothing,
    )
    val_inputs: dict[str, torch.Tensor] = {}
    if len(val_rows):
        val_inputs = _to_tensors(inputs, val_rows, scales, device) | extras
        val_labels = torch.from_numpy(labels[val_rows]).to(device)
    generator = torch.Generator().manual_seed(seed)
    partners = mirror_partner(features.roi_names)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": params.epochs, "loss": float("inf"), "state": None}
    started = time.perf_counter()
    for epoch in progress(range(1, params.epochs + 1), f"train {fold} seed {seed}"):
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(params, epoch)
        model.train()
        order = torch.randperm(len(fit_rows), generator=generator)
        flips = torch.rand(len(order), generator=generator) < 0.5
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), params.batch_size):
            idx = order[start : start + params.batch_size].to(device)
            batch = {key: value[idx] for key, value in fit_inputs.items()} | extras
            if params.augment_flip:
                flip = flips[start : start + params.batch_size].to(device)
                mirrored = flip_batch(batch, partners)
                batch = {
                    k: torch.where(flip.view(-1, *[1] * (v.ndim - 1)), mirrored[k], v) if k in INPUT_KEYS else v
                    for k, v in batch.items()
                }
            optimiser.zero_grad()
            logits = model(batch)
            loss = criterion(logits, fit_labels[idx])
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == fit_labels[idx]).sum())
        row = {"epoch": epoch, "train_loss": total_loss / len(order), "train_accuracy": correct / len(order)}
        if val_inputs:
            row["val_loss"], row["val_accuracy"] = _evaluate_rows(
                model, val_inputs, val_labels, criterion, params.batch_size
            )
            if row["val_loss"] < best["loss"]:
                best = {
                    "epoch": epoch,
                    "loss": row["val_loss"],
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                }
        history.append(row)
        if val_inputs and epoch - best["epoch"] >= params.validation.patience:
            break
    epochs_run = len(history)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    chosen_epoch = best["epoch"] if val_inputs else epochs_run
    model.eval()
    with torch.inference_mode():
        test_inputs = _to_tensors(inputs, test_rows, scales, device) | extras
        probabilities = torch.softmax(model(test_inputs), dim=1).cpu().numpy()
    predictions = samples.iloc[test_rows][["sample", "subject", "fold", "label"]].reset_index(drop=True)
    predictions["predicted"] = [classes[k] for k in probabilities.argmax(axis=1)]
    for k, name in enumerate(classes):
        predictions[f"p_{name}"] = probabilities[:, k]
    info = {
        "fold": fold,
        "model": params.model,
        "seed": seed,
        "device": device,
        "params": asdict(params),
        "classes": list(classes),
        "n_train": len(fit_rows),
        "n_validation": len(val_rows),
        "n_test": len(test_rows),
        "train_subjects": sorted(samples.iloc[fit_rows]["subject"].unique()),
        "validation_subjects": val_subjects,
        "epochs_run": epochs_run,
        "chosen_epoch": chosen_epoch,
        "stopped_early": bool(val_inputs) and epochs_run < params.epochs,
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


def load_graph(au_graph_dir: PathLike, fold: str) -> tuple[np.ndarray, list[int]]:
    """The AU adjacency of ``fold`` and its node AUs; the file must be that fold's."""
    path = Path(au_graph_dir) / f"{fold}.npz"
    if not path.is_file():
        raise MerecError(f"{path}: the AU graph of fold {fold!r} is missing; rerun the au_graph stage")
    graph = load_npz(path)
    if "held_out" in graph and str(graph["held_out"]) != fold:
        raise MerecError(f"{path}: this AU graph was built for fold {graph['held_out']!s}, not {fold!r}")
    aus = [int(a) for a in graph["aus"]] if "aus" in graph else []
    return graph["adjacency"], aus


def select_seeds(params: TrainParams, seed: int | str | None) -> list[int]:
    """The seeds to run: every one of ``train.seeds`` for ``None``/``"all"``, else the named one."""
    if seed is None or seed == "all":
        return list(params.seeds)
    try:
        value = int(seed)
    except (TypeError, ValueError):
        raise MerecError(f"--seed must be an integer or 'all', got {seed!r}") from None
    if value not in params.seeds:
        raise MerecError(
            f"seed {value} is not in train.seeds {list(params.seeds)}; add it to params.yaml or pick one of them"
        )
    return [value]


def run(
    samples_csv: PathLike,
    features_dir: PathLike,
    au_graph_dir: PathLike | None,
    output_dir: PathLike,
    fold: str,
    params: TrainParams,
    seed: int | str | None = "all",
) -> list[str]:
    """Train ``fold`` (or every fold with ``all``) for ``seed`` (or every one of ``train.seeds``).

    Writes ``<output_dir>/seed-<S>/<fold>/`` per run; returns those paths relative to ``output_dir``.
    """
    configure_torch()
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    seeds = select_seeds(params, seed)
    if fold != "all" and fold not in set(samples["fold"]):
        raise MerecError(
            f"fold {fold!r} is not in {samples_csv}; folds are: {', '.join(sorted(samples['fold'].unique()))}"
        )
    features = load_features(samples, features_dir)
    folds = sorted(samples["fold"].unique()) if fold == "all" else [fold]
    written = []
    for name in folds:
        adjacency, aus = (None, None) if au_graph_dir is None else load_graph(au_graph_dir, name)
        for s in seeds:
            result = train_fold(features, classes, name, params, adjacency, seed=s, aus=aus)
            target = fold_dir(output_dir, s, name)
            write_fold(result, target)
            written.append(str(target.relative_to(output_dir)))
            info = result["info"]
            LOG.info(
                "fold %s seed %d: trained on %d samples (%d for validation), epoch %d of %d, predicted %d",
                name,
                s,
                info["n_train"],
                info["n_validation"],
                info["chosen_epoch"],
                info["epochs_run"],
                info["n_test"],
            )
    return written
