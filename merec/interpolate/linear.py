"""The ``linear`` interpolator: a blend of the two neighbouring frames (the ablation baseline)."""

from __future__ import annotations

import numpy as np

from merec.interpolate.positions import split_positions


class LinearInterpolator:
    """Blend of the two neighbouring frames, weighted by the fractional position."""

    def resample(self, frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 at ``positions`` (N,) in [0, T-1] -> (N, H, W, 3) uint8."""
        n_source = frames.shape[0]
        left, frac = split_positions(positions, n_source)
        right = np.minimum(left + 1, n_source - 1)
        weight = frac[:, None, None, None]
        blended = (1.0 - weight) * frames[left].astype(np.float32) + weight * frames[right].astype(np.float32)
        return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
