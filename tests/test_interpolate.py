"""The interpolate stage's API: evenly timed source positions, linear blending, unknown methods."""

from __future__ import annotations

import numpy as np
import pytest

from merec.interpolate import (
    InterpolateParams,
    LinearInterpolator,
    resample_clip,
    source_positions,
    split_positions,
)
from merec.io import (
    MerecError,
)
from merec.magnify import MagnifyParams


def test_source_positions_span_onset_to_apex() -> None:
    positions = source_positions(7, 13)
    assert positions[0] == 0 and positions[-1] == 6 and len(positions) == 13
    left, frac = split_positions(positions, 7)
    assert np.allclose(left + frac, positions)
    assert frac[0] == 0 and frac[-1] == 0


def test_linear_keeps_source_frames_and_blends_between() -> None:
    frames = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (0, 100, 200)])
    out = LinearInterpolator().resample(frames, np.array([0.0, 0.5, 1.0, 1.25, 2.0]))
    assert out.dtype == np.uint8 and out.shape == (5, 4, 4, 3)
    assert [int(v) for v in out[:, 0, 0, 0]] == [0, 50, 100, 125, 200]


def test_resample_clip_up_and_down(face: np.ndarray) -> None:
    clip = np.stack([face] * 5)
    assert resample_clip(clip, 13, LinearInterpolator()).shape == (13, *face.shape)
    long_clip = np.stack([face] * 30)
    assert resample_clip(long_clip, 13, LinearInterpolator()).shape == (13, *face.shape)


def test_unknown_methods_are_clear_errors() -> None:
    with pytest.raises(MerecError, match="interpolate.method"):
        InterpolateParams.from_mapping({"method": "cubic"})
    with pytest.raises(MerecError, match="magnify.method"):
        MagnifyParams.from_mapping({"method": "phase"})
