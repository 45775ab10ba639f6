"""Motion magnification stage, static mode: every frame is magnified relative to the onset.

A :class:`Magnifier` takes an interpolated clip whose frame 0 is the onset (the reference) and
returns the clip with its onset-relative motion amplified by ``alpha``. ``none`` returns the input,
``evm`` is linear Eulerian magnification (:mod:`merec.magnify.evm`), ``magnet`` a learned MagNet
(:mod:`merec.magnify.magnet`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from merec.errors import MerecError
from merec.io import PathLike
from merec.magnify.params import EvmParams, MagnetParams, MagnifyParams
from merec.runtime import map_shard, single_threaded
from merec.shards import Shard

METHODS = ("none", "evm", "magnet")
__all__ = [
    "METHODS",
    "EvmParams",
    "MagnetParams",
    "Magnifier",
    "MagnifyParams",
    "NoMagnification",
    "make_magnifier",
    "run",
]


class Magnifier(Protocol):
    """Amplifies the motion of each frame relative to ``frames[0]``."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (T, H, W, 3) uint8 RGB, frame 0 the reference; returns the same shape and dtype."""
        ...


class NoMagnification:
    """The identity: the ablation baseline."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return frames


def make_magnifier(params: MagnifyParams) -> Magnifier:
    """Build the magnifier named by ``magnify.method`` with amplification ``magnify.alpha``."""
    if params.method == "none":
        return NoMagnification()
    if params.method == "evm":
        from merec.magnify.evm import EulerianMagnifier

        return EulerianMagnifier(params.alpha, params.evm)
    if params.method == "magnet":
        from merec.magnify.magnet import MagNetMagnifier

        return MagNetMagnifier(params.alpha, params.magnet, params.device)
    raise MerecError(f"magnify.method: unknown method {params.method!r}; choose one of {', '.join(METHODS)}")


def run(input_manifest: PathLike, output_manifest: PathLike, params: MagnifyParams) -> Shard:
    """Magnify every interpolated clip of a shard relative to its onset frame."""
    single_threaded()  # before any model is built: workers fork from here
    magnifier = make_magnifier(params)

    def magnify_sample(arrays: dict[str, np.ndarray], sample: str) -> dict[str, np.ndarray]:
        return {**arrays, "frames": magnifier(arrays["frames"])}

    desc = f"magnify ({params.method}, alpha={params.alpha})"
    return map_shard(input_manifest, output_manifest, magnify_sample, "magnify", desc)
