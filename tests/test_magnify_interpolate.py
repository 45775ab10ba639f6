"""Linear interpolation, the interpolation stage API and Eulerian magnification."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from merec.interpolate import LinearInterpolator, make_interpolator, resample_clip, source_positions, split_positions
from merec.io import MerecError
from merec.magnify import NoMagnification, make_magnifier
from merec.magnify.evm import EulerianMagnifier, collapse_pyramid, laplacian_pyramid


def shifted(image: np.ndarray, dx: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[60:188, 140:268])


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
        make_interpolator("cubic")
    with pytest.raises(MerecError, match="magnify.method"):
        make_magnifier("phase", 2.0)


def test_pyramid_roundtrip(face: np.ndarray) -> None:
    image = face.astype(np.float32) / 255
    assert np.allclose(collapse_pyramid(laplacian_pyramid(image, 4)), image, atol=1e-5)


def test_evm_amplifies_subpixel_motion(face: np.ndarray) -> None:
    from skimage.metrics import structural_similarity

    frames = np.stack([face, shifted(face, 0.25)])
    target = shifted(face, 0.25 * 5)
    out = EulerianMagnifier(alpha=4.0)(frames)
    before = structural_similarity(frames[1], target, channel_axis=2)
    after = structural_similarity(out[1], target, channel_axis=2)
    assert after > before
    assert np.array_equal(out[0], frames[0])


def test_evm_alpha_zero_is_identity_and_none_is_passthrough(face: np.ndarray) -> None:
    frames = np.stack([face, shifted(face, 0.5)])
    out = EulerianMagnifier(alpha=0.0)(frames)
    assert np.abs(out.astype(int) - frames.astype(int)).max() <= 1
    assert NoMagnification()(frames) is frames


def test_evm_rejects_tiny_frames() -> None:
    with pytest.raises(MerecError, match="levels"):
        EulerianMagnifier(alpha=2.0, levels=6)(np.zeros((2, 16, 16, 3), np.uint8))
