"""Apex estimation for clips without an annotated apex (SMIC, CAS(ME)³ part C, rows with ``/``).

The apex is the frame whose Farneback optical flow from the onset frame has the largest mean
magnitude (frames converted to grayscale and resized so their longer side is :data:`APEX_SIZE`
px; ties go to the earlier frame). It uses the clip's own frames only, never a label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from merec.errors import MerecError
from merec.io import read_image

APEX_SIZE = 96
METHOD = "estimated: frame of largest Farneback flow from the onset"


def flow_apex(paths: Sequence[Path]) -> int:
    """Index into ``paths`` of the frame with the largest mean flow magnitude from ``paths[0]``."""
    try:
        return largest_flow_index(read_image(path, grayscale=True) for path in paths)
    except _SizeDiffers as exc:
        message = f"{paths[exc.index]}: frame size differs from {paths[0].name}; restore the original frames"
        raise MerecError(message) from None


def largest_flow_index(frames: Iterable[np.ndarray]) -> int:
    """Index of the frame (grey or RGB uint8 images, in order) whose flow from the first is largest."""
    reference: np.ndarray | None = None
    best, best_motion = 0, -1.0
    for index, image in enumerate(frames):
        frame = _small_gray(image)
        if reference is None:
            reference = frame
            continue
        if frame.shape != reference.shape:
            raise _SizeDiffers(index)
        flow = cv2.calcOpticalFlowFarneback(reference, frame, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        motion = float(np.mean(np.hypot(flow[..., 0], flow[..., 1])))
        if motion > best_motion:
            best, best_motion = index, motion
    return best


class _SizeDiffers(MerecError):
    def __init__(self, index: int):
        super().__init__(f"frame {index} differs in size from the first frame")
        self.index = index


def _small_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale frame resized so its longer side is APEX_SIZE px."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = APEX_SIZE / max(image.shape)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
