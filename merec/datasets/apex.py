"""Apex estimation for clips without an annotated apex (SMIC, CAS(ME)³ part C, rows with ``/``).

The apex is the frame whose Farneback optical flow from the onset frame has the largest mean
magnitude (frames converted to grayscale and resized so their longer side is :data:`APEX_SIZE`
px; ties go to the earlier frame). It uses the clip's own frames only, never a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from merec.errors import MerecError
from merec.io import read_image

APEX_SIZE = 96
METHOD = "estimated: frame of largest Farneback flow from the onset"


def flow_apex(paths: Sequence[Path]) -> int:
    """Index into ``paths`` of the frame with the largest mean flow magnitude from ``paths[0]``."""
    reference = _gray(paths[0])
    best, best_motion = 0, -1.0
    for index, path in enumerate(paths[1:], start=1):
        frame = _gray(path)
        if frame.shape != reference.shape:
            raise MerecError(f"{path}: frame size differs from {paths[0].name}; restore the original frames")
        flow = cv2.calcOpticalFlowFarneback(reference, frame, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        motion = float(np.mean(np.hypot(flow[..., 0], flow[..., 1])))
        if motion > best_motion:
            best, best_motion = index, motion
    return best


def _gray(path: Path) -> np.ndarray:
    """Grayscale frame resized so its longer side is APEX_SIZE px."""
    image = read_image(path, grayscale=True)
    scale = APEX_SIZE / max(image.shape)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
