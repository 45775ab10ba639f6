"""Linear Eulerian video magnification (Wu et al., SIGGRAPH 2012) in static mode.

Each frame is decomposed into a Laplacian pyramid; at every level the change relative to the
reference frame (the onset) is amplified. Following Wu et al.'s bound ``(1 + alpha) * delta <
lambda / 8``, levels whose spatial wavelength is short compared with ``lambda_c`` get a reduced
amplification, so fine detail is not torn apart; the finest level (mostly sensor noise) and the
low-pass residual (illumination) are not amplified by default.
"""

from __future__ import annotations

import cv2
import numpy as np

from merec.errors import MerecError
from merec.magnify.params import EvmParams


def level_alphas(
    alpha: float, levels: int, lambda_c: float, amplify_finest: bool = False, amplify_lowpass: bool = False
) -> np.ndarray:
    """Amplification per Laplacian level (0 = finest) plus one entry for the low-pass residual.

    Level ``l`` holds structure of wavelength about ``4 * 2**l`` px; its factor is
    ``min(alpha, (lambda_l / lambda_c) * (1 + alpha) - 1)``, clipped at 0.
    """
    wavelengths = 4.0 * 2.0 ** np.arange(levels)
    alphas = np.minimum(alpha, wavelengths / lambda_c * (1.0 + alpha) - 1.0).clip(min=0.0)
    if not amplify_finest and levels > 0:
        alphas[0] = 0.0
    residual = alpha if amplify_lowpass else 0.0
    return np.append(alphas, residual)


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass levels (finest first) followed by the low-pass residual."""
    pyramid = []
    current = image
    for _ in range(levels):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


def collapse_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])) + band
    return image


class EulerianMagnifier:
    """Amplify every frame's change relative to frame 0 by ``alpha`` (per-level attenuated)."""

    def __init__(self, alpha: float, params: EvmParams) -> None:
        self.alpha = float(alpha)
        self.levels = params.levels
        self.alphas = level_alphas(
            self.alpha, self.levels, params.lambda_c, params.amplify_finest, params.amplify_lowpass
        )

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        height, width = frames.shape[1:3]
        if min(height, width) < 2**self.levels:
            raise MerecError(
                f"frames of {width}x{height} px are too small for {self.levels} pyramid levels; "
                "lower magnify.evm.levels"
            )
        as_float = frames.astype(np.float32) / 255.0
        reference = laplacian_pyramid(as_float[0], self.levels)
        out = np.empty_like(frames)
        out[0] = frames[0]
        for index in range(1, frames.shape[0]):
            bands = laplacian_pyramid(as_float[index], self.levels)
            magnified = [
                band + factor * (band - ref) for band, ref, factor in zip(bands, reference, self.alphas, strict=True)
            ]
            image = collapse_pyramid(magnified)
            out[index] = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
        return out
