"""Evaluate stage: pooled LOSO metrics from every fold's predictions, per seed and over seeds.

UF1 is the unweighted mean of per-class F1 and UAR the unweighted mean of per-class recall, both
computed on the predictions of all folds POOLED together (scikit-learn macro averages over the
fixed class list, so a class that never occurs counts as 0 instead of vanishing). With several
``train.seeds`` the pooled scores are computed for each seed separately; the headline numbers are
their mean, next to the sample standard deviation over seeds (0 for one seed). Per-fold rows of
``loso.csv`` are for inspection only; their macro scores use the classes present in that fold's
ground truth.

Every clip of the samples table counts: one that an earlier stage skipped (no features, so no
prediction) is scored as an error and listed in ``metrics.json`` (``samples_without_features``),
as MEGC scoring counts every clip.

With ``evaluate.bootstrap`` draws (default 2000) ``metrics.json`` also holds 95% intervals of
the headline scores (``uf1_ci95``, ...) from a subject-level bootstrap
(:mod:`merec.evaluate.bootstrap`).

For a composite dataset (MEGC2019: subjects qualified by their component, ``casme2/01``,
``samm/006``, ``smic/s1``) the scores are also reported per component dataset, each pooled over
that component's subjects.

Reads every training run (:mod:`merec.runs`: ``<folds_dir>/seed-<S>/<fold>/``) and writes
into ``output_dir``: ``metrics.json`` (DVC metrics), ``loso.csv``, ``per_class.csv``,
``predictions.csv`` (with a ``seed`` column), ``learning_curves.csv`` (every run's history, long
format), ``confusion.png`` (summed over seeds), ``learning_curve.png``, and the DVC plot data
``plots/confusion.csv`` and ``plots/learning_curve.csv`` (mean over folds and seeds per epoch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from merec.config import Params
from merec.datasets.ingest import fitting_rows, read_classes, read_samples
from merec.evaluate.bootstrap import LEVEL, subject_bootstrap
from merec.evaluate.metrics import (
    SCORES,
    component,
    per_class,
    per_fold_rows,
    pooled_by_seed,
    pooled_rows,
    summarise,
    with_unpredicted,
)
from merec.evaluate.plots import plot_confusion, plot_learning_curve
from merec.io import PathLike, write_csv, write_json
from merec.runs import chosen_epoch, folds_root, read_histories, read_info, read_predictions

LOG = logging.getLogger("merec.evaluate")
CURVE_COLUMNS = ["epoch", "fold", "seed", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
CURVE_VALUES = CURVE_COLUMNS[3:]


@dataclass(frozen=True)
class EvaluateParams(Params):
    """The ``evaluate`` section: ``bootstrap`` draws of the subject-level interval (0: none);
    the seeds are ``train.seeds``."""

    section = "evaluate"
    bootstrap: int


def learning_curves(folds_dir: PathLike, predictions: pd.DataFrame) -> pd.DataFrame:
    """Learning-curve table: every (seed, fold) run's history, long format, fixed columns."""
    runs = [(int(seed), str(fold)) for (seed, fold), _ in predictions.groupby(["seed", "fold"], sort=True)]
    table = read_histories(folds_dir, runs)
    for column in CURVE_COLUMNS:
        if column not in table:
            table[column] = np.nan
    return table[CURVE_COLUMNS]


def mean_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean over runs (folds x seeds) per epoch, with the number of runs that reached the epoch."""
    grouped = curve.groupby("epoch", sort=True)
    mean = grouped[CURVE_VALUES].mean()
    mean["runs"] = grouped.size()
    return mean.reset_index()


def _chosen_epochs(folds_dir: PathLike, predictions: pd.DataFrame) -> dict[tuple[int, str], int | None]:
    runs = {(int(seed), str(fold)) for seed, fold in zip(predictions["seed"], predictions["fold"], strict=True)}
    return {(seed, fold): chosen_epoch(read_info(folds_dir, seed, fold)) for seed, fold in sorted(runs)}


def run(
    samples_csv: PathLike,
    folds: Sequence[PathLike] | PathLike,
    output_dir: PathLike,
    params: EvaluateParams,
    dataset: str = "",
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Pool every fold's predictions per seed and write the metrics files into ``output_dir``.

    ``seeds`` are the seeds to evaluate (``None``: every ``seed-<S>/`` folder under ``folds_dir``).
    """
    folds_dir = folds_root(folds)
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    folds = sorted(samples["fold"].unique())
    fitted = fitting_rows(samples)
    if not fitted.all():  # predict-only rows (spotted intervals) are scored by their own stage
        LOG.info("%d predict-only sample(s) are left out of the LOSO metrics", int((~fitted).sum()))
    samples = samples[fitted]
    found = read_predictions(folds_dir, folds, seeds)
    predictions, unpredicted = with_unpredicted(found[found["sample"].isin(samples["sample"])], samples)
    if unpredicted:
        LOG.warning(
            "%d sample(s) have no prediction (an earlier stage skipped them) and count as errors: %s",
            len(unpredicted), ", ".join(unpredicted[:10]) + (" ..." if len(unpredicted) > 10 else ""),
        )  # fmt: skip
    absent = sorted(set(classes) - set(predictions["label"]))
    if absent:
        LOG.warning("classes %s never occur in the ground truth; they count as 0 in UF1/UAR", absent)
    components = sorted({component(s) for s in predictions["subject"]} - {""})
    composite = components if len(components) > 1 else []
    per_seed = pooled_by_seed(predictions, classes)
    overall = summarise(per_seed)
    out = Path(output_dir)
    pooled, per_dataset = pooled_rows(predictions, classes, composite)
    loso = pd.DataFrame(per_fold_rows(predictions, _chosen_epochs(folds_dir, predictions)) + pooled)
    sd_columns = [f"{k}_sd" for k in SCORES]
    loso = loso[["fold", "seed", "subject", "dataset", "n", "epoch", *SCORES, *sd_columns]]
    loso["n"] = loso["n"].astype("Int64")
    loso["epoch"] = loso["epoch"].astype("Int64")
    write_csv(out / "loso.csv", loso.round(6))
    write_csv(out / "per_class.csv", per_class(predictions, classes).round(6))
    write_csv(out / "predictions.csv", predictions)
    write_csv(
        out / "plots" / "confusion.csv",
        predictions[["sample", "seed", "label", "predicted"]].rename(columns={"label": "actual"}),
    )
    curve = learning_curves(folds_dir, predictions)
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
    interval: dict[str, Any] = {}
    if params.bootstrap:
        interval = subject_bootstrap(predictions, classes, params.bootstrap)
        interval["interval"] = f"{LEVEL:.0%} subject-level bootstrap, {params.bootstrap} draws"
    metrics: dict[str, Any] = (
        {k: round(v, 6) for k, v in overall.items()}
        | interval
        | {
            "n_seeds": n_seeds,
            "per_seed": {str(s): {k: round(v, 6) for k, v in values.items()} for s, values in per_seed.items()},
            "n_samples": int(predictions["sample"].nunique()),
            "n_folds": len(folds),
            "n_samples_without_features": len(unpredicted),
            "samples_without_features": unpredicted,  # counted as errors in every score
        }
    )
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
    if interval:
        LOG.info("  %s: UF1 %s, UAR %s", interval["interval"], interval["uf1_ci95"], interval["uar_ci95"])
    for name, values in per_dataset.items():
        LOG.info("  %s: UF1 %.4f UAR %.4f", name, values["uf1"], values["uar"])
    return metrics
