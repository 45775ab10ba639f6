"""dlib face detection and 68-point landmarks, shared by the synthetic generator and the face stage.

The 68-point predictor ships in the ``face_recognition_models`` package; it is located with
``importlib.util.find_spec`` because importing that package fails on new setuptools.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from merec.errors import MerecError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
# dlib 68-point index of each landmark's left-right partner
MIRROR = (
    [16 - i for i in range(17)]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)

# dlib 68-point indices (x is the column); "right"/"left" are the subject's, i.e. image left/right.
GROUPS: dict[str, list[int]] = {
    "jaw": list(range(0, 17)),
    "right_brow": list(range(17, 22)),
    "left_brow": list(range(22, 27)),
    "nose": list(range(27, 36)),
    "right_eye": list(range(36, 42)),
    "left_eye": list(range(42, 48)),
    "mouth": list(range(48, 68)),
}


def models_dir() -> Path:
    """Folder of the dlib model files installed by ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise MerecError(
            "the dlib landmark model is missing: install the package face_recognition_models "
            "(pip install face_recognition_models)"
        )
    folder = Path(spec.origin).parent / "models"
    if not (folder / PREDICTOR_FILE).is_file():
        raise MerecError(f"{folder / PREDICTOR_FILE} is missing: reinstall face_recognition_models")
    return folder


@functools.lru_cache(maxsize=1)
def _dlib_models() -> tuple[object, object]:
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(models_dir() / PREDICTOR_FILE))


@dataclass(frozen=True)
class Face:
    """A detected face: its box (left, top, right, bottom), detector score and landmarks (68, 2)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray


def detect_faces(
    image: np.ndarray, upsample: int = 0, min_score: float = 0.0, max_side: int | None = None
) -> list[Face]:
    """All faces dlib's HOG detector finds in an RGB uint8 image, best score first.

    ``max_side``: detect on a copy downscaled to at most this many px on its longer side (large
    frames: 1080p video), then place the landmarks on the full-resolution image.
    """
    import cv2
    import dlib

    detector, predictor = _dlib_models()
    factor = 1.0
    small = image
    if max_side is not None and max(image.shape[:2]) > max_side:
        factor = max(image.shape[:2]) / max_side
        size = (round(image.shape[1] / factor), round(image.shape[0] / factor))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    rects, scores, _ = detector.run(np.ascontiguousarray(small), upsample, min_score)
    faces = []
    for rect, score in zip(rects, scores, strict=True):
        box = [round(value * factor) for value in (rect.left(), rect.top(), rect.right(), rect.bottom())]
        shape = predictor(image, dlib.rectangle(*box))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        faces.append(Face((box[0], box[1], box[2], box[3]), float(score), points))
    return sorted(faces, key=lambda face: -face.score)


RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON_DISTANCE = 0.6  # dlib's documented threshold: descriptors of one person lie closer than this


@functools.lru_cache(maxsize=1)
def _recognition_model() -> object:
    import dlib

    path = models_dir() / RECOGNITION_FILE
    if not path.is_file():
        raise MerecError(f"{path} is missing: reinstall face_recognition_models")
    return dlib.face_recognition_model_v1(str(path))


def face_descriptor(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 128-d face-recognition descriptor of a detected face (Euclidean distance < 0.6: same person)."""
    import dlib

    _, predictor = _dlib_models()
    left, top, right, bottom = face.box
    shape = predictor(np.ascontiguousarray(image), dlib.rectangle(left, top, right, bottom))
    return np.asarray(_recognition_model().compute_face_descriptor(np.ascontiguousarray(image), shape))


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the subject's right eye (image left) and left eye (image right)."""
    return landmarks[GROUPS["right_eye"]].mean(axis=0), landmarks[GROUPS["left_eye"]].mean(axis=0)


def interocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the two eye centres in pixels."""
    right, left = eye_centres(landmarks)
    return float(np.linalg.norm(left - right))
