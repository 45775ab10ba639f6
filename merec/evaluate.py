"""Evaluation stage: pooled LOSO metrics from every fold's predictions, per seed and over seeds.

UF1 is the unweighted mean of per-class F1 and UAR the unweighted mean of per-class recall, both
computed on the predictions of all folds POOLED together (scikit-learn macro averages over the
fixed class list, so a class that never occurs counts as 0 instead of vanishing). With several
``train.seeds`` the pooled scores are computed for each seed separately; the headline numbers are
their mean, next to the sample standard deviation over seeds (0 for one seed). Per-fold rows of
``loso.csv`` are for inspection only; their macro scores use the classes present in that fold's
ground truth.

For a composite dataset (MEGC2019: subjects qualified by their component, ``casme2/01``,
``samm/006``, ``smic/s1``) the scores are also reported per component dataset, each pooled over
that component's subjects.

Reads ``<folds_dir>/seed-<S>/<fold>/{predictions,history}.csv`` (and ``fold.json``) and writes
into ``output_dir``: ``metrics.json`` (DVC metrics), ``loso.csv``, ``per_class.csv``,
``predictions.csv`` (with a ``seed`` column), ``learning_curves.csv`` (every run's history, long
format), ``confusion.png`` (summed over seeds), ``learning_curve.png``, and the DVC plot data
``plots/confusion.csv`` and ``plots/learning_curve.csv`` (mean over folds and seeds per epoch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, recall_score

from merec.datasets.ingest import read_classes, read_samples
from merec.io import MerecError, PathLike, atomic_path, write_csv, write_json
from merec.train import SEED_PREFIX, seed_dir_name

LOG = logging.getLogger("merec.evaluate")
SCORES = ("uf1", "uar", "accuracy")
CURVE_COLUMNS = ["epoch", "fold", "seed", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
CURVE_VALUES = CURVE_COLUMNS[3:]


def scores(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """UF1, UAR and accuracy over ``classes`` (macro averages; absent classes count as 0)."""
    labels = list(classes)
    return {
        "uf1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "uar": float(recall_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(truth, predicted)),
    }


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def component(subject: str) -> str:
    """The dataset a qualified subject belongs to (``casme2/01`` -> ``casme2``)."""
    return subject.split("/", 1)[0] if "/" in subject else ""


def find_seeds(folds_dir: PathLike) -> list[int]:
    """Seeds with a ``seed-<S>/`` folder under ``folds_dir``."""
    folder = Path(folds_dir)
    seeds = []
    for path in folder.glob(f"{SEED_PREFIX}*"):
        suffix = path.name[len(SEED_PREFIX) :]
        if path.is_dir() and suffix.isdigit():
            seeds.append(int(suffix))
    return sorted(seeds)


def _fold_dirs(seed_dir: Path, expected_folds: Sequence[str]) -> list[Path]:
    """Every expected fold's folder of one seed; missing or extra folds are an error."""
    found = sorted(p.parent.name for p in seed_dir.glob("*/predictions.csv"))
    missing = sorted(set(expected_folds) - set(found))
    extra = sorted(set(found) - set(expected_folds))
    if missing:
        raise MerecError(f"{seed_dir}: no predictions for folds {', '.join(missing)}; run their training jobs")
    if extra:
        raise MerecError(
            f"{seed_dir}: predictions for folds not in the samples table ({', '.join(extra)}); "
            "they are stale: delete them and rerun"
        )
    return [seed_dir / f for f in found]


def resolve_seeds(folds_dir: PathLike, seeds: Sequence[int] | None) -> list[int]:
    """The seeds to evaluate: ``seeds`` (each must have a folder) or every ``seed-<S>/`` found."""
    folder = Path(folds_dir)
    found = find_seeds(folder)
    if seeds is None:
        if not found:
            flat = sorted(p.parent.name for p in folder.glob("*/predictions.csv"))
            hint = (
                f" (found fold folders {', '.join(flat[:3])} without a seed level, written by an older merec: "
                "delete them and retrain)"
                if flat
                else ""
            )
            raise MerecError(f"{folder}: no {SEED_PREFIX}<S>/ folders{hint}; run the training jobs first")
        return found
    wanted = list(dict.fromkeys(int(s) for s in seeds))
    missing = [s for s in wanted if s not in found]
    if missing:
        raise MerecError(
            f"{folder}: no predictions for seed(s) {', '.join(map(str, missing))} "
            f"(expected {folder / seed_dir_name(missing[0])}/<fold>/); run their training jobs"
        )
    ignored = sorted(set(found) - set(wanted))
    if ignored:
        LOG.warning("ignoring %s: not among the seeds %s", ", ".join(seed_dir_name(s) for s in ignored), wanted)
    return wanted


def collect_predictions(
    folds_dir: PathLike, expected_folds: Sequence[str], seeds: Sequence[int] | None = None
) -> pd.DataFrame:
    """Concatenate ``seed-<S>/<fold>/predictions.csv`` (with a ``seed`` column) over seeds and folds."""
    frames = []
    for seed in resolve_seeds(folds_dir, seeds):
        for folder in _fold_dirs(Path(folds_dir) / seed_dir_name(seed), expected_folds):
            frame = pd.read_csv(folder / "predictions.csv", dtype={"sample": str, "subject": str, "fold": str})
            frame.insert(0, "seed", seed)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def collect_histories(folds_dir: PathLike, predictions: pd.DataFrame) -> pd.DataFrame:
    """Learning-curve table: ``history.csv`` of every (seed, fold) run, long format."""
    frames = []
    for (seed, fold), _ in predictions.groupby(["seed", "fold"], sort=True):
        path = Path(folds_dir) / seed_dir_name(int(seed)) / str(fold) / "history.csv"
        if not path.is_file():
            raise MerecError(f"{path} is missing; the training run is incomplete: rerun it")
        history = pd.read_csv(path)
        history["fold"], history["seed"] = fold, int(seed)
        frames.append(history)
    table = pd.concat(frames, ignore_index=True)
    for column in CURVE_COLUMNS:
        if column not in table:
            table[column] = np.nan
    return table[CURVE_COLUMNS]


def _chosen_epoch(folds_dir: PathLike, seed: int, fold: str) -> int | None:
    path = Path(folds_dir) / seed_dir_name(seed) / fold / "fold.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return info.get("chosen_epoch", info.get("params", {}).get("epochs"))


def per_fold_rows(predictions: pd.DataFrame, folds_dir: PathLike | None = None) -> list[dict[str, Any]]:
    """One row per (seed, fold) with scores over the classes present in that fold's ground truth."""
    if "seed" not in predictions:
        predictions = predictions.assign(seed=0)
    rows = []
    for (seed, fold), group in predictions.groupby(["seed", "fold"], sort=True):
        present = sorted(group["label"].unique())
        subject = group["subject"].iloc[0]
        row = {"fold": fold, "seed": int(seed), "subject": subject, "dataset": component(subject), "n": len(group)}
        if folds_dir is not None:
            row["epoch"] = _chosen_epoch(folds_dir, int(seed), str(fold))
        rows.append(row | scores(group["label"], group["predicted"], present))
    return rows


def pooled_by_seed(predictions: pd.DataFrame, classes: Sequence[str]) -> dict[int, dict[str, float]]:
    """Pooled scores of each seed's predictions."""
    return {
        int(seed): scores(group["label"], group["predicted"], classes)
        for seed, group in predictions.groupby("seed", sort=True)
    }


def summarise(per_seed: dict[int, dict[str, float]]) -> dict[str, float]:
    """Mean over seeds (``uf1``, ...) and standard deviation (``uf1_sd``, ...)."""
    out: dict[str, float] = {}
    for key in SCORES:
        out[key], out[f"{key}_sd"] = mean_sd([values[key] for values in per_seed.values()])
    return out


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str, path: PathLike) -> None:
    """Save a confusion-matrix PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axes = plt.subplots(figsize=(4.5, 4.0), dpi=120)
    ConfusionMatrixDisplay(matrix, display_labels=list(classes)).plot(ax=axes, colorbar=False, cmap="Blues")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def mean_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean over runs (folds x seeds) per epoch, with the number of runs that reached the epoch."""
    grouped = curve.groupby("epoch", sort=True)
    mean = grouped[CURVE_VALUES].mean()
    mean["runs"] = grouped.size()
    return mean.reset_index()


def plot_learning_curve(curve: pd.DataFrame, title: str, path: PathLike) -> None:
    """Save mean (± sd over folds and seeds) loss and accuracy per epoch, training and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8.0, 3.4), dpi=120)
    grouped = curve.groupby("epoch")
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            column = f"{split}_{metric}"
            if curve[column].notna().any():
                mean, sd = grouped[column].mean(), grouped[column].std().fillna(0.0)
                axis.plot(mean.index, mean, color=colour, label=f"{split} (mean)")
                axis.fill_between(mean.index, mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def _per_class(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class: mean over seeds, with the F1 sd over seeds."""
    tables = []
    for _, group in predictions.groupby("seed", sort=True):
        precision, recall, f1, support = precision_recall_fscore_support(
            group["label"], group["predicted"], labels=list(classes), zero_division=0
        )
        tables.append(
            pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})
        )
    stacked = pd.concat(tables)
    table = stacked.groupby("class", sort=False).mean().reset_index()
    table["support"] = table["support"].round().astype(int)
    table["f1_sd"] = stacked.groupby("class", sort=False)["f1"].std(ddof=1).fillna(0.0).to_numpy()
    return table


def _pooled_rows(predictions: pd.DataFrame, classes: Sequence[str], composite: list[str]) -> tuple[list, dict]:
    """loso.csv rows pooled per seed and over seeds, and the per-dataset metrics."""
    rows: list[dict[str, Any]] = []
    groups = [(name, predictions[predictions["subject"].map(component) == name]) for name in composite]
    groups.append(("all", predictions))
    per_dataset: dict[str, dict[str, Any]] = {}
    summaries = {}
    for name, subset in groups:
        per_seed = pooled_by_seed(subset, classes)
        n = len(subset) // max(1, len(per_seed))
        for seed, values in per_seed.items():
            rows.append({"fold": "pooled", "seed": seed, "subject": "all", "dataset": name, "n": n} | values)
        summaries[name] = summarise(per_seed)
        if name != "all":
            per_dataset[name] = summaries[name] | {"n_samples": n, "n_folds": int(subset["fold"].nunique())}
    # seed rows first (grouped by seed), then the means over seeds; the overall mean is the last row
    rows.sort(key=lambda r: (r["seed"], r["dataset"] == "all"))
    for name, _ in groups:
        rows.append({"fold": "pooled", "seed": "mean", "subject": "all", "dataset": name, "n": None} | summaries[name])
    return rows, per_dataset


def run(
    samples_csv: PathLike,
    folds_dir: PathLike,
    output_dir: PathLike,
    dataset: str = "",
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Pool every fold's predictions per seed and write the metrics files into ``output_dir``.

    ``seeds`` are the seeds to evaluate (``None``: every ``seed-<S>/`` folder under ``folds_dir``).
    """
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    folds = sorted(samples["fold"].unique())
    predictions = collect_predictions(folds_dir, folds, seeds)
    absent = sorted(set(classes) - set(predictions["label"]))
    if absent:
        LOG.warning("classes %s never occur in the ground truth; they count as 0 in UF1/UAR", absent)
    components = sorted({component(s) for s in predictions["subject"]} - {""})
    composite = components if len(components) > 1 else []
    per_seed = pooled_by_seed(predictions, classes)
    overall = summarise(per_seed)
    out = Path(output_dir)
    pooled_rows, per_dataset = _pooled_rows(predictions, classes, composite)
    loso = pd.DataFrame(per_fold_rows(predictions, folds_dir) + pooled_rows)
    sd_columns = [f"{k}_sd" for k in SCORES]
    loso = loso[["fold", "seed", "subject", "dataset", "n", "epoch", *SCORES, *sd_columns]]
    loso["n"] = loso["n"].astype("Int64")
    loso["epoch"] = loso["epoch"].astype("Int64")
    write_csv(out / "loso.csv", loso.round(6))
    write_csv(out / "per_class.csv", _per_class(predictions, classes).round(6))
    write_csv(out / "predictions.csv", predictions)
    write_csv(
        out / "plots" / "confusion.csv",
        predictions[["sample", "seed", "label", "predicted"]].rename(columns={"label": "actual"}),
    )
    curve = collect_histories(folds_dir, predictions)
    write_csv(out / "learning_curves.csv", curve.round(6))
    write_csv(out / "plots" / "learning_curve.csv", mean_curve(curve).round(6))
    n_seeds = len(per_seed)
    seeds_text = f"{n_seeds} seeds, " if n_seeds > 1 else ""
    plot_learning_curve(
        curve, f"{dataset} LOSO learning curve ({seeds_text}{len(folds)} folds)", out / "learning_curve.png"
    )
    matrix = confusion_matrix(predictions["label"], predictions["predicted"], labels=classes)
    title = f"{dataset} LOSO (pooled{', summed over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else ''}): "
    title += f"UF1 {overall['uf1']:.3f}  UAR {overall['uar']:.3f}"
    plot_confusion(matrix, classes, title, out / "confusion.png")
    metrics: dict[str, Any] = {k: round(v, 6) for k, v in overall.items()} | {
        "n_seeds": n_seeds,
        "per_seed": {str(s): {k: round(v, 6) for k, v in values.items()} for s, values in per_seed.items()},
        "n_samples": int(predictions["sample"].nunique()),
        "n_folds": len(folds),
        "n_samples_without_features": int(len(samples) - predictions["sample"].nunique()),
    }
    if per_dataset:
        metrics["per_dataset"] = {
            name: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()}
            for name, values in per_dataset.items()
        }
    write_json(out / "metrics.json", metrics)
    LOG.info(
        "pooled over %d folds, mean of %d seed(s): UF1 %.4f (sd %.4f) UAR %.4f accuracy %.4f",
        len(folds),
        n_seeds,
        overall["uf1"],
        overall["uf1_sd"],
        overall["uar"],
        overall["accuracy"],
    )
    for name, values in per_dataset.items():
        LOG.info("  %s: UF1 %.4f UAR %.4f", name, values["uf1"], values["uar"])
    return metrics
