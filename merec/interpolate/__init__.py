"""Temporal interpolation stage: resample each aligned clip from onset to apex to N frames.

Output frame ``k`` (of ``N``) sits at source position ``k * (A - 1) / (N - 1)`` where ``A`` is the
number of frames from onset to apex inclusive, so frame 0 is the onset and frame ``N-1`` the apex.
Positions between two source frames are synthesised by an :class:`Interpolator`: ``linear`` blends
the two neighbours; ``rife`` runs a RIFE HDv3 IFNet (see :mod:`merec.interpolate.rife`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from merec.errors import MerecError
from merec.interpolate.linear import LinearInterpolator
from merec.interpolate.params import InterpolateParams, RifeParams
from merec.interpolate.positions import source_positions, split_positions
from merec.io import PathLike
from merec.runtime import map_shard, single_threaded
from merec.shards import Shard

METHODS = ("linear", "rife")
__all__ = [
    "METHODS",
    "InterpolateParams",
    "Interpolator",
    "LinearInterpolator",
    "RifeParams",
    "make_interpolator",
    "resample_clip",
    "run",
    "source_positions",
    "split_positions",
]


class Interpolator(Protocol):
    """Synthesises frames at fractional source positions of a clip."""

    def resample(self, frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """``frames`` (T, H, W, 3) uint8 RGB; ``positions`` (N,) floats in [0, T-1].

        Returns (N, H, W, 3) uint8; integer positions return the source frame unchanged.
        """
        ...


def make_interpolator(params: InterpolateParams) -> Interpolator:
    """Build the interpolator named by ``interpolate.method``."""
    if params.method == "linear":
        return LinearInterpolator()
    if params.method == "rife":
        from merec.interpolate.rife import RifeInterpolator

        return RifeInterpolator(params.rife, params.device)
    raise MerecError(f"interpolate.method: unknown method {params.method!r}; choose one of {', '.join(METHODS)}")


def resample_clip(frames: np.ndarray, n_frames: int, interpolator: Interpolator) -> np.ndarray:
    """Resample ``frames`` (onset..apex) to ``n_frames`` evenly timed frames."""
    positions = source_positions(frames.shape[0], n_frames)
    return interpolator.resample(frames, positions)


def run(input_manifest: PathLike, output_manifest: PathLike, params: InterpolateParams) -> Shard:
    """Resample every aligned clip (onset..apex) of a face shard to ``params.frames`` frames."""
    single_threaded()  # before any model is built: workers fork from here
    interpolator = make_interpolator(params)
    frames = params.frames

    def resample_sample(arrays: dict[str, np.ndarray], sample: str) -> dict[str, np.ndarray]:
        apex = int(arrays["apex_index"])
        if apex < 1:
            raise MerecError(f"sample {sample}: apex equals onset; nothing to interpolate")
        out = {k: v for k, v in arrays.items() if k not in ("frames", "frame_numbers", "apex_index")}
        out["frames"] = resample_clip(arrays["frames"][: apex + 1], frames, interpolator)
        out["positions"] = arrays["frame_numbers"][0] + source_positions(apex + 1, frames)
        return out

    return map_shard(input_manifest, output_manifest, resample_sample, "interpolate", f"interpolate ({params.method})")
