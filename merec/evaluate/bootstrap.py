"""Subject-level bootstrap intervals of the pooled LOSO scores.

LOSO's unit of independence is the subject, not the clip: clips of one person are alike. A draw
resamples the subjects with replacement (each drawn subject brings all its clips, with every
seed's predictions of them), pools the drawn predictions, and scores them as the headline is
scored (per seed, then the mean over seeds). The 2.5th and 97.5th percentiles of ``draws`` such
scores are the 95% interval. Draws come from a fixed generator seed, so the interval is the same
on every run. Computed from per-subject confusion counts, so thousands of draws take a moment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from merec.evaluate.metrics import SCORES

LEVEL = 0.95


def confusion_counts(predictions: pd.DataFrame, classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(seeds, subjects, K, K + 1) counts of (true class, predicted class); the last column holds
    predictions outside ``classes`` (a clip without a prediction). Also the subjects' order."""
    subjects = sorted(predictions["subject"].unique())
    seeds = sorted(predictions["seed"].unique())
    index = {name: k for k, name in enumerate(classes)}
    k = len(classes)
    counts = np.zeros((len(seeds), len(subjects), k, k + 1), dtype=np.int64)
    seed_of = {seed: i for i, seed in enumerate(seeds)}
    subject_of = {subject: i for i, subject in enumerate(subjects)}
    for seed, subject, label, predicted in predictions[["seed", "subject", "label", "predicted"]].itertuples(
        index=False, name=None
    ):
        counts[seed_of[seed], subject_of[subject], index[label], index.get(predicted, k)] += 1
    return counts, subjects


def scores_of_confusion(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """UF1, UAR and accuracy of (..., K, K + 1) confusion counts (macro over the K classes; a
    class with no clips and no predictions scores 0, as scikit-learn's ``zero_division=0``)."""
    k = confusion.shape[-2]
    hits = np.diagonal(confusion[..., :k], axis1=-2, axis2=-1).astype(np.float64)
    truth = confusion.sum(axis=-1)
    called = confusion[..., :k].sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(truth > 0, hits / truth, 0.0)
        precision = np.where(called > 0, hits / called, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        total = truth.sum(axis=-1)
        accuracy = np.where(total > 0, hits.sum(axis=-1) / total, 0.0)
    return {"uf1": f1.mean(axis=-1), "uar": recall.mean(axis=-1), "accuracy": accuracy}


def seed_scores(predictions: pd.DataFrame, classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Each seed's pooled score (seeds in sorted order): the statistic :func:`subject_bootstrap`
    resamples, so the mean over seeds is the point estimate its interval belongs to."""
    counts, _ = confusion_counts(predictions, classes)
    return scores_of_confusion(counts.sum(axis=1))


def subject_bootstrap(
    predictions: pd.DataFrame, classes: Sequence[str], draws: int, seed: int = 0
) -> dict[str, list[float]]:
    """95% intervals (``uf1_ci95``: [low, high], ...) of the mean-over-seeds pooled scores."""
    counts, subjects = confusion_counts(predictions, classes)
    rng = np.random.default_rng(seed)
    picks = rng.multinomial(len(subjects), np.full(len(subjects), 1 / len(subjects)), size=draws)  # (D, S)
    pooled = np.einsum("ds,eskc->dekc", picks, counts)  # (draws, seeds, K, K + 1)
    values = scores_of_confusion(pooled)
    tail = (1 - LEVEL) / 2 * 100
    return {
        f"{name}_ci95": [round(float(v), 6) for v in np.percentile(values[name].mean(axis=1), [tail, 100 - tail])]
        for name in SCORES
    }


def paired_difference(
    base: pd.DataFrame, other: pd.DataFrame, classes: Sequence[str], draws: int, seed: int = 0
) -> dict[str, dict[str, float | list[float] | bool]]:
    """``other`` minus ``base`` on the same clips: the mean-over-seeds pooled difference of each
    score, its 95% interval from a paired subject bootstrap (one draw resamples the same subjects
    for both), and ``resolved``: whether the interval excludes 0."""
    if set(base["sample"]) != set(other["sample"]):
        raise ValueError("paired differences need predictions of the same clips")
    base_counts, subjects = confusion_counts(base, classes)
    other_counts, other_subjects = confusion_counts(other, classes)
    assert subjects == other_subjects
    rng = np.random.default_rng(seed)
    picks = rng.multinomial(len(subjects), np.full(len(subjects), 1 / len(subjects)), size=draws)
    drawn = {
        name: scores_of_confusion(np.einsum("ds,eskc->dekc", picks, counts))
        for name, counts in (("base", base_counts), ("other", other_counts))
    }
    point = {
        name: scores_of_confusion(counts.sum(axis=1))
        for name, counts in (("base", base_counts), ("other", other_counts))
    }
    tail = (1 - LEVEL) / 2 * 100
    out: dict[str, dict[str, float | list[float] | bool]] = {}
    for score in SCORES:
        differences = drawn["other"][score].mean(axis=1) - drawn["base"][score].mean(axis=1)
        low, high = (float(v) for v in np.percentile(differences, [tail, 100 - tail]))
        value = float(point["other"][score].mean() - point["base"][score].mean())
        out[score] = {
            "difference": round(value, 6),
            "ci95": [round(low, 6), round(high, 6)],
            "resolved": low > 0 or high < 0,
        }
    return out
