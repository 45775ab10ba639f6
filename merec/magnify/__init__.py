"""Motion magnification stage, static mode: every frame is magnified relative to the onset.

A :class:`Magnifier` takes an interpolated clip whose frame 0 is the onset (the reference) and
returns the clip with its onset-relative motion amplified by ``alpha``. ``none`` returns the input,
``evm`` is linear Eulerian magnification (:mod:`merec.magnify.evm`), ``magnet`` a learned MagNet
(:mod:`merec.magnify.magnet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from merec.io import MerecError, PathLike, map_sample_dir
from merec.runtime import configure_torch

METHODS = ("none", "evm", "magnet")


class Magnifier(Protocol):
    """Amplifies the motion of each frame relative to ``frames[0]``."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (T, H, W, 3) uint8 RGB, frame 0 the reference; returns the same shape and dtype."""
        ...


class NoMagnification:
    """The identity: the ablation baseline."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return frames


def make_magnifier(
    method: str, alpha: float, options: Mapping[str, Any] | None = None, device: str = "auto"
) -> Magnifier:
    """Build the magnifier named by ``magnify.method`` with amplification ``alpha``."""
    options = dict(options or {})
    if method == "none":
        return NoMagnification()
    if method == "evm":
        from merec.magnify.evm import EulerianMagnifier

        return EulerianMagnifier(alpha=alpha, **options)
    if method == "magnet":
        from merec.magnify.magnet import MagNetMagnifier

        return MagNetMagnifier(alpha=alpha, device=device, **options)
    raise MerecError(f"magnify.method: unknown method {method!r}; choose one of {', '.join(METHODS)}")


def run(
    input_dir: PathLike,
    output_dir: PathLike,
    method: str,
    alpha: float,
    options: Mapping[str, Any],
    device: str = "auto",
) -> int:
    """Magnify every interpolated clip of ``input_dir`` relative to its onset frame."""
    configure_torch()
    magnifier = make_magnifier(method, alpha, options, device)

    def magnify_sample(arrays: dict[str, np.ndarray], sample: str) -> dict[str, np.ndarray]:
        return {**arrays, "frames": magnifier(arrays["frames"])}

    return map_sample_dir(input_dir, output_dir, magnify_sample, f"magnify ({method}, alpha={alpha})")
