"""Linear Eulerian magnification: the pyramid, amplified sub-pixel motion, identities."""

from __future__ import annotations

import numpy as np
import pytest

from merec.io import (
    MerecError,
)
from merec.magnify import EvmParams, NoMagnification
from merec.magnify.evm import EulerianMagnifier, collapse_pyramid, laplacian_pyramid
from tests.helpers.images import shifted


def evm(alpha: float, **options) -> EulerianMagnifier:
    return EulerianMagnifier(alpha, EvmParams.from_mapping(options))


def test_pyramid_roundtrip(face: np.ndarray) -> None:
    image = face.astype(np.float32) / 255
    assert np.allclose(collapse_pyramid(laplacian_pyramid(image, 4)), image, atol=1e-5)


def test_evm_amplifies_subpixel_motion(face: np.ndarray) -> None:
    from skimage.metrics import structural_similarity

    frames = np.stack([face, shifted(face, 0.25)])
    target = shifted(face, 0.25 * 5)
    out = evm(4.0)(frames)
    before = structural_similarity(frames[1], target, channel_axis=2)
    after = structural_similarity(out[1], target, channel_axis=2)
    assert after > before
    assert np.array_equal(out[0], frames[0])


def test_evm_alpha_zero_is_identity_and_none_is_passthrough(face: np.ndarray) -> None:
    frames = np.stack([face, shifted(face, 0.5)])
    out = evm(0.0)(frames)
    assert np.abs(out.astype(int) - frames.astype(int)).max() <= 1
    assert NoMagnification()(frames) is frames


def test_evm_rejects_tiny_frames() -> None:
    with pytest.raises(MerecError, match="levels"):
        evm(2.0, levels=6)(np.zeros((2, 16, 16, 3), np.uint8))
