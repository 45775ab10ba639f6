"""Evaluation stage: pooled LOSO metrics from every fold's predictions.

UF1 is the unweighted mean of per-class F1 and UAR the unweighted mean of per-class recall, both
computed on the predictions of all folds POOLED together (scikit-learn macro averages over the
fixed class list, so a class that never occurs counts as 0 instead of vanishing). Per-fold rows
of ``loso.csv`` are for inspection only; their macro scores use the classes present in that
fold's ground truth. Writes ``loso.csv``, ``metrics.json`` (DVC metrics), ``per_class.csv``,
``predictions.csv``, ``confusion.png`` and ``plots/confusion.csv`` (DVC confusion plot data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, recall_score

from merec.io import MerecError, PathLike, atomic_path, write_csv, write_json
from merec.train import read_classes, read_samples

LOG = logging.getLogger("merec.evaluate")


def scores(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """UF1, UAR and accuracy over ``classes`` (macro averages; absent classes count as 0)."""
    labels = list(classes)
    return {
        "uf1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "uar": float(recall_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(truth, predicted)),
    }


def collect_predictions(folds_dir: PathLike, expected_folds: Sequence[str]) -> pd.DataFrame:
    """Concatenate ``<fold>/predictions.csv``; every expected fold must be there, no other."""
    folder = Path(folds_dir)
    found = sorted(p.parent.name for p in folder.glob("*/predictions.csv"))
    missing = sorted(set(expected_folds) - set(found))
    extra = sorted(set(found) - set(expected_folds))
    if missing:
        raise MerecError(f"{folder}: no predictions for folds {', '.join(missing)}; run their training jobs")
    if extra:
        raise MerecError(
            f"{folder}: predictions for folds not in the samples table ({', '.join(extra)}); "
            "they are stale: delete them and rerun"
        )
    frames = [
        pd.read_csv(folder / f / "predictions.csv", dtype={"sample": str, "subject": str, "fold": str}) for f in found
    ]
    return pd.concat(frames, ignore_index=True)


def per_fold_rows(predictions: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per fold with scores over the classes present in that fold's ground truth."""
    rows = []
    for fold, group in predictions.groupby("fold", sort=True):
        present = sorted(group["label"].unique())
        rows.append(
            {"fold": fold, "subject": group["subject"].iloc[0], "n": len(group)}
            | scores(group["label"], group["predicted"], present)
        )
    return rows


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


def run(samples_csv: PathLike, folds_dir: PathLike, output_dir: PathLike, dataset: str = "") -> dict[str, Any]:
    """Pool every fold's predictions and write the metrics files into ``output_dir``."""
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    folds = sorted(samples["fold"].unique())
    predictions = collect_predictions(folds_dir, folds)
    pooled = scores(predictions["label"], predictions["predicted"], classes)
    absent = sorted(set(classes) - set(predictions["label"]))
    if absent:
        LOG.warning("classes %s never occur in the ground truth; they count as 0 in UF1/UAR", absent)
    out = Path(output_dir)
    rows = per_fold_rows(predictions)
    rows.append({"fold": "pooled", "subject": "all", "n": len(predictions)} | pooled)
    write_csv(out / "loso.csv", pd.DataFrame(rows).round(6))
    precision, recall, f1, support = precision_recall_fscore_support(
        predictions["label"], predictions["predicted"], labels=classes, zero_division=0
    )
    per_class = pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})
    write_csv(out / "per_class.csv", per_class.round(6))
    write_csv(out / "predictions.csv", predictions)
    write_csv(
        out / "plots" / "confusion.csv",
        predictions[["sample", "label", "predicted"]].rename(columns={"label": "actual"}),
    )
    matrix = confusion_matrix(predictions["label"], predictions["predicted"], labels=classes)
    title = f"{dataset} LOSO (pooled): UF1 {pooled['uf1']:.3f}  UAR {pooled['uar']:.3f}"
    plot_confusion(matrix, classes, title, out / "confusion.png")
    metrics = {k: round(v, 6) for k, v in pooled.items()} | {
        "n_samples": len(predictions),
        "n_folds": len(folds),
        "n_samples_without_features": int(len(samples) - len(predictions)),
    }
    write_json(out / "metrics.json", metrics)
    LOG.info(
        "pooled over %d folds: UF1 %.4f UAR %.4f accuracy %.4f",
        len(folds),
        pooled["uf1"],
        pooled["uar"],
        pooled["accuracy"],
    )
    return metrics
