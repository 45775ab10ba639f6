"""Scenes with known motion on a face for the magnification benchmarks (and their tests).

The face is ``skimage.data.astronaut``, which MagNet's training pairs
(:mod:`merec.magnify.training.pairs`) hold out; a smooth field of local motion bumps deforms it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from merec.magnify.training.pairs import image_pool, random_direction


def face_image(size: int = 128) -> np.ndarray:
    """The held-out ``skimage.data.astronaut`` face, area-downscaled to (size, size, 3) float."""
    image = image_pool(("astronaut",))[0]
    face = image[20:260, 120:360]  # Eileen Collins' face and hair, 240 x 240
    return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)


@dataclass
class WarpScene:
    """An image deformed by a smooth known displacement field: frame(t) = I(x - t * flow(x))."""

    image: np.ndarray
    flow: np.ndarray  # (H, W, 2) (dx, dy) pixels per unit time

    def render(self, t: float) -> np.ndarray:
        from scipy import ndimage

        height, width = self.image.shape[:2]
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        coords = [yy - t * self.flow[..., 1], xx - t * self.flow[..., 0]]
        channels = [
            ndimage.map_coordinates(self.image[..., c], coords, order=5, mode="mirror")
            for c in range(self.image.shape[2])
        ]
        return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)


def face_scene(rng: np.random.Generator, motion: float, size: int = 128) -> WarpScene:
    """The astronaut face with 2-4 smooth local motion bumps; peak displacement ``motion`` px."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    flow = np.zeros((size, size, 2))
    for _ in range(int(rng.integers(2, 5))):
        cy, cx = rng.uniform(0.25, 0.8, 2) * size
        sigma = rng.uniform(0.06, 0.15) * size
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        flow += bump[..., None] * random_direction(rng)
    peak = np.linalg.norm(flow, axis=2).max()
    flow *= motion / max(peak, 1e-9)
    return WarpScene(image=face_image(size), flow=flow.astype(np.float32))
