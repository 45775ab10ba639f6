"""Where output frames fall in the source clip: evenly timed fractional positions."""

from __future__ import annotations

import numpy as np

from merec.errors import MerecError


def source_positions(n_source: int, n_frames: int) -> np.ndarray:
    """Evenly spaced positions from the first to the last of ``n_source`` frames."""
    if n_source < 1:
        raise MerecError("cannot resample an empty clip")
    if n_frames < 2:
        raise MerecError(f"interpolate.frames must be at least 2, got {n_frames}")
    return np.linspace(0.0, n_source - 1, n_frames)


def split_positions(positions: np.ndarray, n_source: int, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour index and fraction in [0, 1) for each position (exact frames get 0)."""
    positions = np.asarray(positions, dtype=np.float64)
    left = np.floor(positions + eps).astype(np.int64)
    left = np.clip(left, 0, n_source - 1)
    frac = positions - left
    frac[np.abs(frac) < eps] = 0.0
    return left, np.clip(frac, 0.0, 1.0)
