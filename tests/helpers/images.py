"""Test images: a real face from scikit-image, moved by known sub-pixel shifts."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data


def astronaut_face(size: int = 128) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop of ``skimage.data.astronaut`` around the face (128: no resizing)."""
    crop = np.ascontiguousarray(data.astronaut()[60:188, 140:268])
    return crop if size == 128 else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def shifted(image: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    """``image`` translated by (``dx``, ``dy``) pixels (bicubic, reflected borders)."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def encoded(suffix: str, size: int = 64) -> bytes:
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(data.astronaut()[:size, :size, ::-1]))
    assert ok
    return buffer.tobytes()


def face_image() -> np.ndarray:
    """A 180 px crop around the astronaut's face (dlib finds one face in it)."""
    return cv2.resize(np.ascontiguousarray(data.astronaut()[43:210, 139:306]), (180, 180))


def canvas(*faces: tuple[int, int, int]) -> np.ndarray:
    """A 200x400 grey frame with copies of :func:`face_image` of ``size`` at (``x``, ``y``)."""
    frame = np.full((200, 400, 3), 120, np.uint8)
    for x, y, size in faces:
        frame[y : y + size, x : x + size] = cv2.resize(face_image(), (size, size))
    return frame


ONE_FACE = canvas((10, 10, 180))
TWO_FACES = canvas((10, 10, 180), (210, 10, 180))
BIG_AND_SMALL = canvas((10, 10, 180), (250, 50, 90))
NO_FACE = np.full((200, 400, 3), 120, np.uint8)
