"""From a per-frame score curve to spotted intervals: threshold, peaks, ``peak +- k``, merged overlaps.

The rule of the reference spotting methods (MDMD, SoftNet, MEAN): per video the threshold is
``T = mean + p * (max - mean)`` of the curve, every local maximum at least ``T`` and at least ``k``
frames from a higher one is a peak, and each peak becomes the interval ``peak - k .. peak + k``
(clipped to the video). Overlapping intervals are merged into one (its score: the higher peak's).
Frames without a score (no face, no flow: NaN) never peak and do not count in the mean or max.

The training-free baseline curve (:func:`baseline_curve`) is the MDMD-style feature difference on
merec's per-frame ROI motion: the mean over ROIs of the flow magnitude between frames ``i`` and
``i + k``, placed at the pair's centre, each frame's value less the mean of its neighbours ``k``
before and after (``contrast``: slow motion such as head drift or a long expression's plateau
cancels, a burst as short as a micro-expression does not), then a moving mean over ``k`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks


@dataclass(frozen=True, order=True)
class Spotted:
    """One spotted interval, in frame numbers (both ends included)."""

    onset: int
    offset: int
    peak: int
    score: float


def shift(values: np.ndarray, by: int) -> np.ndarray:
    """``values`` moved ``by`` frames later (earlier when negative; NaN where nothing moved in)."""
    out = np.full_like(values, np.nan)
    n = len(values)
    if abs(by) < n:
        out[max(by, 0) : n + min(by, 0)] = values[max(-by, 0) : n - max(by, 0)]
    return out


def nan_smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving mean over ``width`` frames that ignores NaN (NaN where the whole window is)."""
    if width <= 1:
        return values.copy()
    finite = np.isfinite(values)
    total = uniform_filter1d(np.where(finite, values, 0.0), width, mode="constant")
    count = uniform_filter1d(finite.astype(float), width, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[count < 1e-9] = np.nan
    out[~finite] = np.nan  # a frame with no score of its own stays without
    return out


def baseline_curve(rois: np.ndarray, valid: np.ndarray, k: int, contrast: bool = True) -> np.ndarray:
    """The training-free spotting curve (N,) of one type from its ROI motion (N, R) (module docstring)."""
    motion = np.full(len(rois), np.nan)
    if valid.any():
        scale = np.median(rois[valid], axis=0)  # each region's own level in this video: no labels involved
        motion[valid] = (rois[valid] / np.maximum(scale, 1e-6)).max(axis=1)
    centred = shift(motion, k // 2)  # the flow i -> i + k belongs to the frames between
    if contrast and 0 < k < len(centred):
        around = np.vstack([shift(centred, k), shift(centred, -k)])
        count = np.isfinite(around).sum(axis=0)
        neighbours = np.where(count > 0, np.nansum(around, axis=0) / np.maximum(count, 1), 0.0)
        centred = np.clip(centred - neighbours, 0.0, None)
    return nan_smooth(centred, k)


def threshold(curve: np.ndarray, p: float) -> float:
    """``mean + p * (max - mean)`` of the finite values of ``curve`` (NaN when it has none)."""
    finite = curve[np.isfinite(curve)]
    if finite.size == 0:
        return float("nan")
    mean = float(finite.mean())
    return mean + p * (float(finite.max()) - mean)


def spot(curve: np.ndarray, k: int, p: float, first_frame: int = 1) -> list[Spotted]:
    """The intervals of one video's curve (module docstring); frame numbers start at ``first_frame``."""
    level = threshold(curve, p)
    if not np.isfinite(level):
        return []
    filled = np.where(np.isfinite(curve), curve, -np.inf)
    peaks, _ = find_peaks(np.concatenate([[-np.inf], filled, [-np.inf]]), height=level, distance=max(k, 1))
    peaks = peaks - 1
    last = len(curve) - 1
    found = sorted(
        Spotted(max(0, int(peak) - k), min(last, int(peak) + k), int(peak), float(curve[peak])) for peak in peaks
    )
    merged: list[Spotted] = []
    for item in found:
        if merged and item.onset <= merged[-1].offset:
            top = max(merged[-1], item, key=lambda s: s.score)
            merged[-1] = Spotted(merged[-1].onset, max(merged[-1].offset, item.offset), top.peak, top.score)
        else:
            merged.append(item)
    return [Spotted(s.onset + first_frame, s.offset + first_frame, s.peak + first_frame, s.score) for s in merged]
