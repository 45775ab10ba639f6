"""Scores of a classification (macro UF1, UAR, accuracy) and the mean and spread of repeated runs.

Shared by the LOSO evaluation (:mod:`merec.evaluate.metrics`) and spot-then-recognize
(:mod:`merec.spotting.recognition`), which sit side by side and import neither of each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score


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
