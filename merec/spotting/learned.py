"""The learned spotter: a shallow CNN regresses a per-frame spotting score (SoftNet-style), one
model per LOSO fold, trained on the training subjects' videos only.

**Input.** Frame ``i``'s flow map of its type (:mod:`merec.spotting.features`: u, v and optical
strain from frame ``i`` to ``i + k``, head motion removed, eyes masked, ``map_size`` px), each
channel divided by its median absolute value over the video's own frames (the video's motion
level; no labels involved).

**Pseudo-labels** (SoftNet): frame ``i`` is 1 when the frames ``i .. i + k - 1`` overlap an
annotated interval of the type, else 0. Every positive frame is used in every epoch with
``negatives`` times as many negatives drawn afresh (the rest of a video is negative and would
swamp the positives).

**Network**, after SoftNet: one 5x5 convolution per channel (3, 5 and 8 filters for u, v and
strain), ReLU, 3x3 max-pooling (stride 3); concatenated; 2x2 max-pooling; a 400-unit dense layer;
one linear output; mean squared error against the pseudo-label, Adam at ``lr``.

**Curve.** The held-out subject's frames are scored; the score of frame ``i`` belongs to the
frames between ``i`` and ``i + k`` (placed at ``i + k // 2``) and is smoothed by a moving mean
over ``k`` frames, as the baseline curve is. Frames without a flow have no score (NaN).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from merec.spotting.peaks import nan_smooth, shift
from merec.spotting.settings import LearnedParams

LOG = logging.getLogger("merec.spotting")


class SoftNet(nn.Module):
    """Three single-channel streams (3/5/8 filters), pooled, concatenated, a dense layer, one score."""

    def __init__(self, map_size: int = 32, hidden: int = 400):
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(nn.Conv2d(1, filters, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 3)) for filters in (3, 5, 8)
        )
        self.pool = nn.MaxPool2d(2, 2)
        side = (map_size // 3) // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of maps (B, 3, m, m)."""
        parts = [stream(maps[:, c : c + 1]) for c, stream in enumerate(self.streams)]
        return self.head(self.pool(torch.cat(parts, dim=1))).squeeze(1)


def video_scale(maps: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-channel motion level (3,) of a video: the median absolute value over its valid frames."""
    if not valid.any():
        return np.ones(3, np.float32)
    rows = np.flatnonzero(valid)
    step = max(1, len(rows) // 500)  # a sample of frames is enough for a median
    sample = np.abs(np.asarray(maps[rows[::step]], np.float32))
    return np.maximum(np.median(sample.transpose(1, 0, 2, 3).reshape(3, -1), axis=1), 1e-4).astype(np.float32)


def pseudo_labels(n: int, first: int, k: int, intervals: pd.DataFrame) -> np.ndarray:
    """1 where frames ``i .. i + k - 1`` overlap an interval (frame numbers from ``first``), else 0."""
    labels = np.zeros(n, np.float32)
    for row in intervals.itertuples(index=False):
        start = max(0, int(row.onset) - first - k + 1)
        labels[start : max(start, min(n, int(row.offset) - first + 1))] = 1.0
    return labels


@dataclass
class VideoData:
    """One video's maps (memory-mapped), validity, labels and motion scale for one type."""

    video: str
    maps: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    scale: np.ndarray
    k: int


def _batches(videos: Sequence[VideoData], rng: np.random.Generator, negatives: float, size: int):
    """Shuffled (video index, frame) batches of every positive and ``negatives`` x as many negatives."""
    positives = [(v, i) for v, data in enumerate(videos) for i in np.flatnonzero(data.valid & (data.labels > 0))]
    pool = [(v, i) for v, data in enumerate(videos) for i in np.flatnonzero(data.valid & (data.labels == 0))]
    count = min(len(pool), round(negatives * max(len(positives), 1)))
    chosen = [pool[j] for j in rng.choice(len(pool), count, replace=False)] if count else []
    items = positives + chosen
    order = rng.permutation(len(items))
    for start in range(0, len(items), size):
        yield [items[j] for j in order[start : start + size]]


def _tensor(videos: Sequence[VideoData], batch: Sequence[tuple[int, int]], device: str) -> torch.Tensor:
    maps = np.stack([np.asarray(videos[v].maps[i], np.float32) / videos[v].scale[:, None, None] for v, i in batch])
    return torch.from_numpy(maps).to(device)


def train(videos: Sequence[VideoData], params: LearnedParams, seed: int, map_size: int, device: str) -> SoftNet:
    """A spotter trained on ``videos`` (the fold's training subjects)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SoftNet(map_size).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr)
    if not any((data.labels > 0).any() for data in videos):
        LOG.warning("no annotated interval in the training videos: the spotter learns only negatives")
    for epoch in range(params.epochs):
        model.train()
        total, count = 0.0, 0
        for batch in _batches(videos, rng, params.negatives, params.batch_size):
            target = torch.tensor([videos[v].labels[i] for v, i in batch], device=device)
            loss = nn.functional.mse_loss(model(_tensor(videos, batch, device)), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        LOG.info("epoch %d/%d: training loss %.4f", epoch + 1, params.epochs, total / max(count, 1))
    return model


@torch.no_grad()
def curve(model: SoftNet, data: VideoData, device: str, batch_size: int = 256) -> np.ndarray:
    """The spotting curve (N,) of one video (module docstring)."""
    model.eval()
    n = len(data.valid)
    scores = np.full(n, np.nan)
    rows = np.flatnonzero(data.valid)
    for start in range(0, len(rows), batch_size):
        batch = [(0, int(i)) for i in rows[start : start + batch_size]]
        scores[rows[start : start + batch_size]] = model(_tensor([data], batch, device)).cpu().numpy()
    return nan_smooth(shift(scores, data.k // 2), data.k)


def load_video(
    video: str, archive: Mapping[str, np.ndarray], maps: np.ndarray, kind: str, truth: pd.DataFrame
) -> VideoData:
    """A video's data of one type from its feature archive, maps and annotated intervals."""
    valid = archive[f"valid_{kind}"].astype(bool)
    k = int(archive[f"k_{kind}"])
    first = int(archive["frame_numbers"][0])
    labels = pseudo_labels(len(valid), first, k, truth[truth["type"] == kind])
    return VideoData(video, maps, valid, labels, video_scale(maps, valid), k)
