"""LOSO scores from pooled predictions: UF1, UAR, accuracy, per seed, per fold, per class.

Pure functions of prediction tables (columns ``seed, sample, subject, fold, label, predicted``):
nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from merec.scores import mean_sd, scores

SCORES = ("uf1", "uar", "accuracy")
NO_PREDICTION = "(no prediction)"  # the prediction of a clip that lost its features: always wrong


def with_unpredicted(predictions: pd.DataFrame, samples: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``predictions`` plus, for every seed, a wrong row for each sample of the table it lacks.

    A clip that an earlier stage left out (face or flow failure under ``on_error: skip``) is an
    error in UF1/UAR, as MEGC scoring counts every clip; its probabilities are NaN. Also returns
    the ids of those samples.
    """
    missing = sorted(set(samples["sample"]) - set(predictions["sample"]))
    if not missing:
        return predictions, []
    lost = samples[samples["sample"].isin(missing)][["sample", "subject", "fold", "label"]]
    rows = [lost.assign(seed=seed, predicted=NO_PREDICTION) for seed in sorted(predictions["seed"].unique())]
    table = pd.concat([predictions, *rows], ignore_index=True)
    return table.sort_values(["seed", "fold", "sample"], kind="stable").reset_index(drop=True), missing


def component(subject: str) -> str:
    """The dataset a qualified subject belongs to (``casme2/01`` -> ``casme2``)."""
    return subject.split("/", 1)[0] if "/" in subject else ""


def per_fold_rows(predictions: pd.DataFrame, epochs: Mapping[tuple[int, str], int | None] | None = None) -> list[dict]:
    """One row per (seed, fold) with scores over the classes present in that fold's ground truth.

    ``epochs`` maps (seed, fold) to the epoch whose model predicted (an ``epoch`` column when given).
    """
    if "seed" not in predictions:
        predictions = predictions.assign(seed=0)
    rows = []
    for (seed, fold), group in predictions.groupby(["seed", "fold"], sort=True):
        present = sorted(group["label"].unique())
        subject = group["subject"].iloc[0]
        if group["subject"].nunique() > 1:  # a leave-one-dataset-out fold holds a whole dataset
            subject = f"{component(subject)}/*"
        row = {"fold": fold, "seed": int(seed), "subject": subject, "dataset": component(subject), "n": len(group)}
        if epochs is not None:
            row["epoch"] = epochs.get((int(seed), str(fold)))
        rows.append(row | scores(group["label"], group["predicted"], present))
    return rows


def pooled_by_seed(predictions: pd.DataFrame, classes: Sequence[str]) -> dict[int, dict[str, float]]:
    """Pooled scores of each seed's predictions."""
    return {
        int(seed): scores(group["label"], group["predicted"], classes)
        for seed, group in predictions.groupby("seed", sort=True)
    }


def summarise(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, float]:
    """Mean over seeds (``uf1``, ...) and standard deviation (``uf1_sd``, ...)."""
    out: dict[str, float] = {}
    for key in SCORES:
        out[key], out[f"{key}_sd"] = mean_sd([values[key] for values in per_seed.values()])
    return out


def per_class(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
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


def pooled_rows(
    predictions: pd.DataFrame, classes: Sequence[str], composite: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``loso.csv`` rows pooled per seed and over seeds, and the per-dataset metrics of a composite."""
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
