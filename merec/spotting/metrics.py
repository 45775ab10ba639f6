"""MEGC spotting metrics and the spot-then-recognize score (STRS) over intervals of long videos.

Intervals are frame ranges with both ends included (an interval of onset 10 and offset 19 is 10
frames long). Two tables describe a run:

* ground truth: ``video``, ``onset``, ``offset``, optionally ``type`` (``micro`` / ``macro``),
  ``emotion`` and ``subject``;
* predictions: ``video``, ``onset``, ``offset``, optionally ``type``, ``emotion`` (the recognised
  class) and ``score``.

**Spotting** (MEGC protocol). A prediction is a true positive when its intersection over union
(IoU) with a ground-truth interval of the same video (and the same type, when both give one) is
at least 0.5. Matching is one to one: a prediction counts for at most one interval and an
interval for at most one prediction; among the eligible pairs of a video the matching with the
most pairs is taken, ties broken by the larger total IoU (:func:`match_intervals`). TP, FP and
FN are summed over the whole dataset, then precision, recall and F1 per type and overall
(:func:`spotting_scores`; overall sums the per-type counts).

**STRS** (Liong et al., Signal Processing: Image Communication 2023) is spotting F1 x analysis
F1. The analysis F1 is computed on the spotted true positives whose ground-truth emotion is one
of the classes: per class the precision and the recall of the recognised emotion, their means
over the classes, then ``2PR / (P + R)`` (not the mean of per-class F1s) (:func:`strs`).

``compat=True`` reproduces the public reference scorer (genbing99/STRS-Metric,
``strs_metric.py``) so that published numbers can be compared; it differs from the definitions
above in these ways, each deliberate here:

1. only subjects with at least one prediction are scored: the intervals of a subject without
   predictions add no false negatives;
2. only videos with ground truth are scored: predictions on other videos are not false positives;
3. a prediction claims every interval it overlaps with IoU >= 0.5, and each claim is a true
   positive (so one prediction can count twice, and two predictions of one interval both count);
4. the classes are every emotion of the predictions and of the ground truth;
5. a class whose binary confusion matrix over the true positives has one cell only (every pair
   that class, or none) scores precision, recall and F1 of 0;
6. its "UAR" is the mean per-class precision (reported as ``uar_compat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from merec.errors import MerecError

IOU_THRESHOLD = 0.5
TYPES = ("micro", "macro")


def interval_iou(onset_a: int, offset_a: int, onset_b: int, offset_b: int) -> float:
    """IoU of two frame ranges, both ends included."""
    overlap = min(offset_a, offset_b) - max(onset_a, onset_b) + 1
    if overlap <= 0:
        return 0.0
    union = (offset_a - onset_a + 1) + (offset_b - onset_b + 1) - overlap
    return overlap / union


def _checked(table: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [column for column in ("video", "onset", "offset") if column not in table.columns]
    if missing:
        raise MerecError(f"{what}: missing column(s) {', '.join(missing)} (need video, onset, offset)")
    table = table.reset_index(drop=True)
    bad = table.index[table["offset"] < table["onset"]]
    if len(bad):
        row = table.loc[bad[0]]
        raise MerecError(
            f"{what}: row {bad[0]} (video {row['video']}) ends before it starts (onset {row['onset']}, "
            f"offset {row['offset']}); fix the interval"
        )
    if "type" in table.columns:
        unknown = sorted(set(table["type"].dropna()) - set(TYPES))
        if unknown:
            raise MerecError(f"{what}: unknown interval type(s) {unknown}; use {' or '.join(TYPES)}")
    return table


def _compatible(truth: pd.Series, prediction: pd.Series) -> bool:
    kinds = truth.get("type"), prediction.get("type")
    return any(kind is None or pd.isna(kind) for kind in kinds) or kinds[0] == kinds[1]


def match_intervals(truth: pd.DataFrame, predictions: pd.DataFrame, threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """One-to-one matches of each video: ``truth`` and ``prediction`` (row positions) and ``iou``.

    Pairs are eligible when their IoU is at least ``threshold`` and their types agree (or either
    gives none); the matching maximises the number of pairs, then their total IoU.
    """
    truth, predictions = _checked(truth, "ground truth"), _checked(predictions, "predictions")
    matches = []
    for video, wanted in truth.groupby("video", sort=True):
        found = predictions[predictions["video"] == video]
        if found.empty:
            continue
        iou = np.zeros((len(wanted), len(found)))
        for i, (_, gt) in enumerate(wanted.iterrows()):
            for j, (_, pred) in enumerate(found.iterrows()):
                if _compatible(gt, pred):
                    iou[i, j] = interval_iou(gt["onset"], gt["offset"], pred["onset"], pred["offset"])
        eligible = iou >= threshold
        if not eligible.any():
            continue
        weight = np.where(eligible, len(wanted) + len(found) + iou, 0.0)  # count first, then IoU
        rows, cols = linear_sum_assignment(weight, maximize=True)
        for i, j in zip(rows, cols, strict=True):
            if eligible[i, j]:
                matches.append({"truth": wanted.index[i], "prediction": found.index[j], "iou": iou[i, j]})
    return pd.DataFrame(matches, columns=["truth", "prediction", "iou"])


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Counts with precision, recall and F1 (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": precision, "recall": recall, "f1": f1}


def spotting_scores(
    truth: pd.DataFrame, predictions: pd.DataFrame, threshold: float = IOU_THRESHOLD
) -> dict[str, dict[str, float]]:
    """TP/FP/FN, precision, recall and F1 per interval type (where the tables give types) and overall."""
    truth, predictions = _checked(truth, "ground truth"), _checked(predictions, "predictions")
    matches = match_intervals(truth, predictions, threshold)
    scores: dict[str, dict[str, float]] = {}
    typed = "type" in truth.columns and "type" in predictions.columns
    if typed:
        matched_types = truth.loc[matches["truth"], "type"].value_counts()
        for kind in TYPES:
            tp = int(matched_types.get(kind, 0))
            scores[kind] = prf(
                tp, int((predictions["type"] == kind).sum()) - tp, int((truth["type"] == kind).sum()) - tp
            )
    tp = len(matches)
    scores["overall"] = prf(tp, len(predictions) - tp, len(truth) - tp)
    return scores


def analysis_scores(truth_emotions: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> dict:
    """Per-class precision and recall of recognised emotions, their means, and ``2PR / (P + R)``."""
    truth_emotions, predicted = np.asarray(truth_emotions, dtype=object), np.asarray(predicted, dtype=object)
    precision, recall = [], []
    for label in classes:
        hits = int(np.sum((truth_emotions == label) & (predicted == label)))
        called, actual = int(np.sum(predicted == label)), int(np.sum(truth_emotions == label))
        precision.append(hits / called if called else 0.0)
        recall.append(hits / actual if actual else 0.0)
    return _class_means(classes, precision, recall)


def _class_means(classes: Sequence[str], precision: list[float], recall: list[float]) -> dict[str, Any]:
    """Mean precision P and mean recall R over the classes, ``2PR / (P + R)`` and the per-class values."""
    p, r = (float(np.mean(values)) if values else 0.0 for values in (precision, recall))
    per_class = {label: {"precision": a, "recall": b} for label, a, b in zip(classes, precision, recall, strict=True)}
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "per_class": per_class}


def strs(
    truth: pd.DataFrame,
    predictions: pd.DataFrame,
    classes: Sequence[str] | None = None,
    threshold: float = IOU_THRESHOLD,
    compat: bool = False,
) -> dict[str, Any]:
    """STRS = spotting F1 x analysis F1, with both parts (see the module docstring; ``compat``: the reference's way).

    ``classes``: the emotion classes of the analysis (default: the ground truth's emotions).
    Both tables need an ``emotion`` column; ``compat`` also needs ``subject`` in both.
    """
    truth, predictions = _checked(truth, "ground truth"), _checked(predictions, "predictions")
    for table, what in ((truth, "ground truth"), (predictions, "predictions")):
        if "emotion" not in table.columns:
            raise MerecError(f"{what}: STRS needs an emotion column")
    if compat:
        return _strs_compat(truth, predictions, threshold)
    classes = list(classes) if classes is not None else sorted(truth["emotion"].dropna().unique())
    matches = match_intervals(truth, predictions, threshold)
    spotting = prf(len(matches), len(predictions) - len(matches), len(truth) - len(matches))
    gt_emotion = truth.loc[matches["truth"], "emotion"].to_numpy()
    recognised = predictions.loc[matches["prediction"], "emotion"].to_numpy()
    keep = pd.Series(gt_emotion, dtype=object).isin(classes).to_numpy()  # unlabelled (None, NaN) are not kept
    analysis = analysis_scores(gt_emotion[keep], recognised[keep], classes)
    return {"strs": spotting["f1"] * analysis["f1"], "spotting": spotting, "analysis": analysis, "classes": classes}


def _strs_compat(truth: pd.DataFrame, predictions: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """The reference scorer's counting (quirks 1-6 of the module docstring)."""
    for table, what in ((truth, "ground truth"), (predictions, "predictions")):
        if "subject" not in table.columns:
            raise MerecError(f"{what}: compat STRS needs a subject column (the reference scores per subject)")
    classes = sorted(set(predictions["emotion"].dropna()) | set(truth["emotion"].dropna()))  # quirk 4
    tp = fp = fn = 0
    pairs: list[tuple[str, str]] = []
    for subject in predictions["subject"].unique():  # quirk 1
        subject_truth = truth[truth["subject"] == subject]
        subject_predictions = predictions[predictions["subject"] == subject]
        for video in subject_truth["video"].unique():  # quirk 2
            wanted = subject_truth[subject_truth["video"] == video]
            claimed: set[int] = set()
            for _, pred in subject_predictions[subject_predictions["video"] == video].iterrows():
                hits = [
                    index
                    for index, gt in wanted.iterrows()
                    if interval_iou(pred["onset"], pred["offset"], gt["onset"], gt["offset"]) >= threshold
                ]
                for index in hits:  # quirk 3: every claim is a true positive
                    pairs.append((wanted.loc[index, "emotion"], pred["emotion"]))
                    claimed.add(index)
                tp += len(hits)
                fp += not hits
            fn += len(wanted) - len(claimed)
    spotting = prf(tp, fp, fn)
    gt_emotion = np.array([a for a, _ in pairs], dtype=object)
    recognised = np.array([b for _, b in pairs], dtype=object)
    precision, recall, f1 = [], [], []
    for label in classes:
        truth_is, called = gt_emotion == label, recognised == label
        if len(pairs) == 0 or len({*truth_is.tolist(), *called.tolist()}) < 2:  # quirk 5: a 1x1 confusion matrix
            scores = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        else:
            masks = (truth_is & called, ~truth_is & called, truth_is & ~called)  # TP, FP, FN of the class
            scores = prf(*(int(np.sum(mask)) for mask in masks))
        precision.append(scores["precision"])
        recall.append(scores["recall"])
        f1.append(scores["f1"])
    analysis = _class_means(classes, precision, recall)
    analysis["uf1"] = float(np.mean(f1))
    analysis["uar_compat"] = analysis["precision"]  # quirk 6: the reference's "UAR" is the mean precision
    return {"strs": spotting["f1"] * analysis["f1"], "spotting": spotting, "analysis": analysis, "classes": classes}
