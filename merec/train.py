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

``train.seeds`` lists the seeds; each (seed, fold) pair is one run, written as
:mod:`merec.runs` lays it out (``<output_dir>/seed-<seed>/<fold>/``).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from merec.checkpoints import save_state_dict
from merec.config import Params
from merec.datasets.ids import ALL_SUBJECTS
from merec.datasets.ingest import fitting_rows, read_classes, read_samples
from merec.errors import MerecError
from merec.io import PathLike, load_npz
from merec.landmarks import MIRROR
from merec.models import build_model, model_class
from merec.runs import run_dir, write_run
from merec.runtime import (
    available_threads,
    ordered_map,
    progress,
    resolve_device,
    seed_everything,
    software_versions,
)
from merec.shards import read_stage, stage_samples, stage_skipped

LOG = logging.getLogger("merec.train")
INPUT_KEYS = ("apex", "face", "rois", "frames", "frontal", "landmarks")
FLOW_KEYS = ("apex", "face", "rois")  # channel 0 is u: negated when mirrored
UNSCALED_KEYS = ("landmarks",)  # positions (fractions of the crop), not normalised by a spread
# inputs the features stage added later -> the array that marks them (older features lack it)
LATER_INPUTS = {"frames": "frames", "frontal": "frontal", "landmarks": "image_size"}


@dataclass(frozen=True)
class ValidationParams(Params):
    """``train.validation``: early stopping on ``subjects`` training subjects (0 = off), ``patience`` epochs."""

    section = "train.validation"
    subjects: int
    patience: int


@dataclass(frozen=True)
class TrainParams(Params):
    """The ``train`` section of params.yaml (defaults and constraints: the params schema).

    ``models`` maps each model name to its options (``train.models.<name>``, defaults filled in).
    """

    section = "train"
    model: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seeds: tuple[int, ...]
    device: str
    class_weighting: str
    labels: str
    augment_flip: bool
    amp: bool
    schedule: str
    label_smoothing: float
    validation: ValidationParams
    models: Mapping[str, Mapping[str, Any]]

    @property
    def model_options(self) -> Mapping[str, Any]:
        """The options of the chosen model (``train.models.<model>``)."""
        return self.models.get(self.model, {})


@dataclass
class FoldResult:
    """One trained fold: the model, its predictions of the held-out subject, per-epoch history, provenance."""

    model: nn.Module
    predictions: pd.DataFrame
    history: pd.DataFrame
    info: dict[str, Any]


@dataclass(frozen=True)
class FoldSplit:
    """Rows of one fold: held-out (test), fitted, and validation (training subjects held back)."""

    test_rows: np.ndarray
    fit_rows: np.ndarray
    val_rows: np.ndarray
    val_subjects: list[str]


@dataclass
class FeatureSet:
    """Model inputs of the samples that have features, aligned with ``samples``' rows."""

    samples: pd.DataFrame
    inputs: dict[str, np.ndarray]
    roi_names: list[str]
    missing: dict[str, str]  # sample -> why it has no features


def load_features(samples: pd.DataFrame, features: Sequence[PathLike] | PathLike) -> FeatureSet:
    """Stack the feature arrays of every sample of the table that the features stage wrote.

    ``features`` are the features stage's shard manifests (or its folder, see :mod:`merec.shards`);
    samples an earlier stage left out are listed in ``missing`` with the reason.
    """
    shards = read_stage(features)
    files, skipped = stage_samples(shards), stage_skipped(shards)
    kept, arrays = [], {key: [] for key in INPUT_KEYS}
    complete = dict.fromkeys(LATER_INPUTS, True)
    missing: dict[str, str] = {}
    roi_names: list[str] = []
    for index, sample in zip(samples.index, samples["sample"], strict=True):
        if sample not in files:
            missing[sample] = skipped.get(sample, "not in the features stage's output (rerun the stages before train)")
            continue
        data = load_npz(files[sample])
        values = sample_inputs(data)
        for key in INPUT_KEYS:  # features written before the stage kept a later input: models say so
            if key in values and complete.get(key, True):
                arrays[key].append(values[key])
            else:
                complete[key] = False
        roi_names = [str(n) for n in data["roi_names"]]
        kept.append(index)
    if not kept:
        raise MerecError(
            f"{shards[0].manifest.parent}: no features for any sample of the table; check the earlier stages"
        )
    if missing:
        LOG.warning("%d samples have no features: %s", len(missing), "; ".join(f"{s}: {r}" for s, r in missing.items()))
    inputs = {key: np.stack(values) for key, values in arrays.items() if values and complete.get(key, True)}
    return FeatureSet(samples.loc[kept].reset_index(drop=True), inputs, roi_names, missing)


def sample_inputs(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model inputs of one sample's features (the features stage's arrays), float32, unscaled.

    Inputs that features written by an older merec lack (:data:`LATER_INPUTS`) are absent.
    """
    out = {
        "face": data["face"].astype(np.float32),
        "apex": data["face"][-1].astype(np.float32),
        "rois": data["rois"].astype(np.float32),
    }
    for key, needed in LATER_INPUTS.items():
        if needed not in data:
            continue
        if key == "landmarks":  # crop pixels -> fractions of the crop
            out[key] = (data["landmarks"] / float(data["image_size"])).astype(np.float32)
        else:
            out[key] = data[key].astype(np.float32)
    return out


def channel_scales(inputs: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel standard deviation of each input over the given (training) rows."""
    scales = {}
    for key, value in inputs.items():
        if key in UNSCALED_KEYS:
            continue
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
    """Mirror a batch horizontally: flip x, negate u, swap left/right ROIs and landmarks."""
    out = {}
    for key, value in batch.items():
        if key not in INPUT_KEYS:
            out[key] = value
            continue
        if key == "landmarks":  # (B, 68, 2) fractions of the crop: x -> 1 - x, each point takes its partner's place
            flipped = value[:, list(MIRROR)].clone()
            flipped[..., 0] = 1.0 - flipped[..., 0]
            out[key] = flipped
            continue
        flipped = torch.flip(value, dims=[-1]).clone()
        if key in FLOW_KEYS:
            flipped[..., 0, :, :] = -flipped[..., 0, :, :]
        if key == "rois":
            flipped = flipped[:, list(partners)]
        out[key] = flipped
    return out


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> torch.Tensor:
    """``balanced``: n / (K * count) over the training labels; ``none``: ones."""
    if mode == "none":
        return torch.ones(n_classes)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def to_tensors(
    inputs: Mapping[str, np.ndarray], rows: np.ndarray, scales: Mapping[str, np.ndarray], device: str
) -> dict[str, torch.Tensor]:
    """The given rows of each input, divided by its training scales (:func:`channel_scales`), on ``device``."""
    return {
        key: torch.from_numpy(_scale(value[rows], scales[key]) if key in scales else value[rows]).to(device)
        for key, value in inputs.items()
    }


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


def split_fold(samples: pd.DataFrame, fold: str, val_subjects: int, seed: int) -> FoldSplit:
    """The rows of ``fold``: the held-out subject is tested, never fitted or validated on.

    ``fold`` :data:`ALL_SUBJECTS` holds nobody out: every subject is fitted (or validated) on and
    nothing is tested (train_all: the recogniser of a bundle)."""
    folds = samples["fold"].to_numpy()
    test_rows = np.flatnonzero(folds == fold)
    train_rows = np.flatnonzero((folds != fold) & fitting_rows(samples))
    if len(test_rows) == 0 and fold != ALL_SUBJECTS:
        raise MerecError(
            f"fold {fold!r} has no samples with features: every clip of its subject was left out by an earlier "
            "stage (the reasons are in that stage's shard manifests and the training log); fix those clips, or "
            "leave the subject out of the dataset"
        )
    if len(train_rows) == 0:
        raise MerecError(f"fold {fold!r}: no training samples left; LOSO needs at least two subjects")
    chosen = validation_subjects(samples, fold, val_subjects, seed)
    val_rows = np.intersect1d(train_rows, np.flatnonzero(samples["subject"].isin(chosen).to_numpy()))
    fit_rows = np.setdiff1d(train_rows, val_rows)
    held_out = set(samples.iloc[test_rows]["subject"])
    if held_out & set(samples.iloc[train_rows]["subject"]):  # pragma: no cover - guards the split itself
        raise RuntimeError(f"fold {fold!r}: the held-out subject leaked into training or validation")
    return FoldSplit(test_rows, fit_rows, val_rows, chosen)


def shuffled_training_labels(labels: np.ndarray, split: FoldSplit, fold: str, seed: int) -> np.ndarray:
    """The control ``train.labels: shuffled``: the fitted and validation rows' labels permuted
    among themselves (a fixed permutation per fold and seed); the held-out labels stay true, so
    scores measure what a model learns from labels that carry no information: chance."""
    out = labels.copy()
    rows = np.concatenate([split.fit_rows, split.val_rows])
    rng = np.random.default_rng([seed, zlib.crc32(fold.encode()), 1])
    out[rows] = labels[rows][rng.permutation(len(rows))]
    return out


def _label_indices(samples: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    unknown = sorted(set(samples["label"]) - set(classes))
    if unknown:
        raise MerecError(f"labels {unknown} are not among the classes {list(classes)}; rerun ingest")
    return samples["label"].map({name: k for k, name in enumerate(classes)}).to_numpy()


@dataclass
class _Fit:
    """What the training loop produced: per-epoch rows and the epoch whose weights are kept."""

    history: list[dict[str, float]]
    chosen_epoch: int
    stopped_early: bool


def _fit(
    model: nn.Module,
    params: TrainParams,
    fit: tuple[dict[str, torch.Tensor], torch.Tensor],
    val: tuple[dict[str, torch.Tensor], torch.Tensor] | None,
    criterion: nn.Module,
    extras: dict[str, torch.Tensor],
    partners: Sequence[int],
    seed: int,
    title: str,
) -> _Fit:
    """Train for ``params.epochs`` (or until validation stops improving); restores the best validation epoch."""
    fit_inputs, fit_labels = fit
    device = fit_labels.device
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    mixed = params.amp and device.type == "cuda"  # the CPU path stays full precision and deterministic
    scaler = torch.amp.GradScaler("cuda", enabled=mixed)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": params.epochs, "loss": float("inf"), "state": None}
    n = len(fit_labels)
    for epoch in progress(range(1, params.epochs + 1), title):
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(params, epoch)
        model.train()
        order = torch.randperm(n, generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        total_loss, correct = 0.0, 0
        for start in range(0, n, params.batch_size):
            idx = order[start : start + params.batch_size].to(device)
            batch = {key: value[idx] for key, value in fit_inputs.items()} | extras
            if params.augment_flip:
                batch = _mirror_some(batch, flips[start : start + params.batch_size].to(device), partners)
            optimiser.zero_grad()
            with torch.autocast(device.type, dtype=torch.float16, enabled=mixed):
                logits = model(batch)
                loss = criterion(logits.float(), fit_labels[idx])
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == fit_labels[idx]).sum())
        row = {"epoch": epoch, "train_loss": total_loss / n, "train_accuracy": correct / n}
        if val is not None:
            row["val_loss"], row["val_accuracy"] = _evaluate_rows(model, val[0], val[1], criterion, params.batch_size)
            if row["val_loss"] < best["loss"]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = {"epoch": epoch, "loss": row["val_loss"], "state": state}
        history.append(row)
        if val is not None and epoch - best["epoch"] >= params.validation.patience:
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    chosen = best["epoch"] if val is not None else len(history)
    return _Fit(history, chosen, val is not None and len(history) < params.epochs)


def _mirror_some(
    batch: dict[str, torch.Tensor], flip: torch.Tensor, partners: Sequence[int]
) -> dict[str, torch.Tensor]:
    """The batch with the samples marked in ``flip`` mirrored (see :func:`flip_batch`)."""
    mirrored = flip_batch(batch, partners)
    return {
        k: torch.where(flip.view(-1, *[1] * (v.ndim - 1)), mirrored[k], v) if k in INPUT_KEYS else v
        for k, v in batch.items()
    }


def train_fold(
    features: FeatureSet,
    classes: Sequence[str],
    fold: str,
    params: TrainParams,
    adjacency: np.ndarray | None = None,
    seed: int | None = None,
    aus: Sequence[int] | None = None,
) -> FoldResult:
    """Train on every fold but ``fold`` and predict ``fold``.

    ``seed`` defaults to the first of ``params.seeds``; ``adjacency`` (K, K) is the fold's AU graph
    and ``aus`` its node AU numbers (used by ``aurel``).
    """
    seed = params.seeds[0] if seed is None else int(seed)
    samples = features.samples
    labels = _label_indices(samples, classes)
    split = split_fold(samples, fold, params.validation.subjects, seed)
    if params.labels == "shuffled":
        labels = shuffled_training_labels(labels, split, fold, seed)
    device = resolve_device(params.device)
    seed_everything(seed, device)
    extras = {} if adjacency is None else {"adjacency": torch.from_numpy(np.asarray(adjacency)).float().to(device)}
    shapes = {key: tuple(value.shape[1:]) for key, value in features.inputs.items()}
    if adjacency is not None:
        shapes["adjacency"] = tuple(np.asarray(adjacency).shape)
    context = {"roi_names": list(features.roi_names), "aus": None if aus is None else [int(a) for a in aus]}
    absent = [key for key in model_inputs(model_class(params.model)) if key not in features.inputs]
    if absent:
        raise MerecError(
            f"train.model {params.model} reads {', '.join(absent)}, which these features do not hold "
            "(written by an older merec): rerun the features stage (snakemake or dvc repro do so)"
        )
    model = build_model(params.model, len(classes), shapes, params.model_options, context).to(device)
    scales = channel_scales(features.inputs, split.fit_rows)
    inputs = {key: features.inputs[key] for key in model_inputs(model)}  # what the model reads

    def prepared(rows: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return to_tensors(inputs, rows, scales, device), torch.from_numpy(labels[rows]).to(device)

    weights = class_weights(labels[split.fit_rows], len(classes), params.class_weighting).to(device)
    if hasattr(model, "criterion"):  # a model with its own loss (capsule: the margin loss)
        criterion = model.criterion(weights)
    else:
        criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=params.label_smoothing)
    val = None
    if len(split.val_rows):
        val_inputs, val_labels = prepared(split.val_rows)
        val = (val_inputs | extras, val_labels)
    started = time.perf_counter()
    partners = mirror_partner(features.roi_names)
    if getattr(model, "closed_form", False):
        fit_inputs, fit_labels = prepared(split.fit_rows)
        weights = class_weights(labels[split.fit_rows], len(classes), params.class_weighting)
        accuracy = model.fit(fit_inputs | extras, fit_labels, weights, seed)
        fitted = _Fit([{"epoch": 1, "train_loss": float("nan"), "train_accuracy": accuracy}], 1, False)
    else:
        fitted = _fit(
            model, params, prepared(split.fit_rows), val, criterion, extras, partners, seed, f"train {fold} seed {seed}"
        )
    predictions = (
        _predict(model, to_tensors(inputs, split.test_rows, scales, device) | extras, samples, split, classes)
        if len(split.test_rows)
        else pd.DataFrame(columns=["sample", "subject", "fold", "label", "predicted", *(f"p_{c}" for c in classes)])
    )
    info = {
        "fold": fold,
        "model": params.model,
        "seed": seed,
        "device": device,
        "params": params.as_dict(),
        "classes": list(classes),
        "n_train": len(split.fit_rows),
        "n_validation": len(split.val_rows),
        "n_test": len(split.test_rows),
        "train_subjects": sorted(samples.iloc[split.fit_rows]["subject"].unique()),
        "validation_subjects": split.val_subjects,
        "epochs_run": len(fitted.history),
        "chosen_epoch": fitted.chosen_epoch,
        "stopped_early": fitted.stopped_early,
        "input_scales": {k: v.tolist() for k, v in scales.items()},
        "input_shapes": {key: list(value) for key, value in shapes.items()},
        "model_context": context,
        "adjacency": None if adjacency is None else np.asarray(adjacency).round(6).tolist(),
        "train_seconds": round(time.perf_counter() - started, 3),
        "torch": torch.__version__,
        "versions": software_versions(),
    }
    return FoldResult(model, predictions, pd.DataFrame(fitted.history), info)


def _predict(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    samples: pd.DataFrame,
    split: FoldSplit,
    classes: Sequence[str],
) -> pd.DataFrame:
    """Class probabilities of the held-out samples (one row each)."""
    probabilities = class_probabilities(model, inputs)
    predictions = samples.iloc[split.test_rows][["sample", "subject", "fold", "label"]].reset_index(drop=True)
    predictions["predicted"] = [classes[k] for k in probabilities.argmax(axis=1)]
    for k, name in enumerate(classes):
        predictions[f"p_{name}"] = probabilities[:, k]
    return predictions


def model_inputs(model: nn.Module) -> tuple[str, ...]:
    """The input keys a model reads (all of :data:`INPUT_KEYS` unless it names its own)."""
    return tuple(getattr(model, "inputs", INPUT_KEYS))


def class_probabilities(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
    """(B, K) class probabilities of a batch (softmax, or the model's own, e.g. capsule lengths), eval mode."""
    model.eval()
    with torch.inference_mode():
        outputs = model(inputs)
        scores = model.probabilities(outputs) if hasattr(model, "probabilities") else torch.softmax(outputs, dim=1)
    return scores.cpu().numpy()


def write_fold(result: FoldResult, output_dir: PathLike) -> None:
    """Write a trained fold's files into ``output_dir`` atomically (layout: :mod:`merec.runs`)."""
    write_run(
        output_dir,
        result.predictions,
        result.history,
        result.info,
        save_model=lambda path: save_state_dict(result.model, path),
    )


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


@dataclass(frozen=True)
class _Job:
    """One (fold, seed) run for a worker process."""

    fold: str
    seed: int
    adjacency: np.ndarray | None
    aus: list[int] | None
    target: Path


_SHARED: dict[str, Any] = {}


def _init_training(features: FeatureSet, classes: list[str], params: TrainParams) -> None:
    _SHARED.update(features=features, classes=classes, params=params)


def _train_job(job: _Job) -> dict[str, Any]:
    result = train_fold(
        _SHARED["features"], _SHARED["classes"], job.fold, _SHARED["params"], job.adjacency, seed=job.seed, aus=job.aus
    )
    write_fold(result, job.target)
    return result.info


def run(
    samples_csv: PathLike,
    features: Sequence[PathLike] | PathLike,
    au_graph_dir: PathLike | None,
    output_dir: PathLike,
    params: TrainParams,
    fold: str = "all",
    seed: int | str | None = "all",
) -> list[str]:
    """Train ``fold`` (or every fold with ``all``) for ``seed`` (or every one of ``train.seeds``).

    ``features``: the features stage's shard manifests or folder. Each run is single-threaded, so
    its numbers do not depend on the machine's cores; several runs (``--fold all``) go to parallel
    worker processes, one per core. Writes ``<output_dir>/seed-<S>/<fold>/`` per run and returns
    those paths relative to ``output_dir``.
    """
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    seeds = select_seeds(params, seed)
    if ALL_SUBJECTS in set(samples["fold"]):
        raise MerecError(f"{samples_csv}: a fold is named {ALL_SUBJECTS!r}, the name of the run on every subject")
    if fold not in ("all", ALL_SUBJECTS) and fold not in set(samples["fold"]):
        raise MerecError(
            f"fold {fold!r} is not in {samples_csv}; folds are: {', '.join(sorted(samples['fold'].unique()))} "
            f"(or {ALL_SUBJECTS}: every subject fitted, nothing held out)"
        )
    loaded = load_features(samples, features)
    folds = sorted(samples["fold"].unique()) if fold == "all" else [fold]
    jobs = []
    for name in folds:
        adjacency, aus = (None, None) if au_graph_dir is None else load_graph(au_graph_dir, name)
        jobs.extend(_Job(name, s, adjacency, aus, run_dir(output_dir, s, name)) for s in seeds)
    device = resolve_device(params.device)
    workers = 1 if device.startswith("cuda") else available_threads()
    infos = ordered_map(
        _train_job, jobs, workers, "train", initializer=_init_training, initargs=(loaded, classes, params)
    )
    for job, info in zip(jobs, infos, strict=True):
        LOG.info(
            "fold %s seed %d: trained on %d samples (%d for validation), epoch %d of %d, predicted %d",
            job.fold, job.seed, info["n_train"], info["n_validation"], info["chosen_epoch"], info["epochs_run"],
            info["n_test"],
        )  # fmt: skip
    return [str(job.target.relative_to(output_dir)) for job in jobs]
