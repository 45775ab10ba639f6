"""Temporal interpolation stage: resample each aligned clip from onset to apex to N frames.

Output frame ``k`` (of ``N``) sits at source position ``k * (A - 1) / (N - 1)`` where ``A`` is the
number of frames from onset to apex inclusive, so frame 0 is the onset and frame ``N-1`` the apex.
Positions between two source frames are synthesised by an :class:`Interpolator`: ``linear`` blends
the two neighbours; ``rife`` runs a RIFE HDv3 IFNet (see :mod:`merec.interpolate.rife`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from merec.io import MerecError, PathLike, map_sample_dir
from merec.runtime import configure_torch

METHODS = ("linear", "rife")


class Interpolator(Protocol):
    """Synthesises frames at fractional source positions of a clip."""

    def resample(self, frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """``frames`` (T, H, W, 3) uint8 RGB; ``positions`` (N,) floats in [0, T-1].

        Returns (N, H, W, 3) uint8; integer positions return the source frame unchanged.
        """
        ...


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


class LinearInterpolator:
    """Blend of the two neighbouring frames, weighted by the fractional position."""

    def resample(self, frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
        n_source = frames.shape[0]
        left, frac = split_positions(positions, n_source)
        right = np.minimum(left + 1, n_source - 1)
        weight = frac[:, None, None, None]
        blended = (1.0 - weight) * frames[left].astype(np.float32) + weight * frames[right].astype(np.float32)
        return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def make_interpolator(method: str, options: Mapping[str, Any] | None = None, device: str = "auto") -> Interpolator:
    """Build the interpolator named by ``interpolate.method``."""
    options = dict(options or {})
    if method == "linear":
        return LinearInterpolator()
    if method == "rife":
        from merec.interpolate.rife import RifeInterpolator

        return RifeInterpolator(device=device, **options)
    raise MerecError(f"interpolate.method: unknown method {method!r}; choose one of {', '.join(METHODS)}")


def resample_clip(frames: np.ndarray, n_frames: int, interpolator: Interpolator) -> np.ndarray:
    """Resample ``frames`` (onset..apex) to ``n_frames`` evenly timed frames."""
    positions = source_positions(frames.shape[0], n_frames)
    return interpolator.resample(frames, positions)


def run(
    input_dir: PathLike,
    output_dir: PathLike,
    method: str,
    frames: int,
    options: Mapping[str, Any],
    device: str = "auto",
) -> int:
    """Resample every aligned clip (onset..apex) of ``input_dir`` to ``frames`` frames."""
    configure_torch()
    interpolator = make_interpolator(method, options, device)

    def resample_sample(arrays: dict[str, np.ndarray], sample: str) -> dict[str, np.ndarray]:
        apex = int(arrays["apex_index"])
        if apex < 1:
            raise MerecError(f"sample {sample}: apex equals onset; nothing to interpolate")
        out = {k: v for k, v in arrays.items() if k not in ("frames", "frame_numbers", "apex_index")}
        out["frames"] = resample_clip(arrays["frames"][: apex + 1], frames, interpolator)
        out["positions"] = arrays["frame_numbers"][0] + source_positions(apex + 1, frames)
        return out

    return map_sample_dir(input_dir, output_dir, resample_sample, f"interpolate ({method})")
