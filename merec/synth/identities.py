"""Identities of the synthetic dataset: real face photos that ship in installed packages, and morphs of them.

Two public-domain portraits ship with packages merec already depends on (nothing is downloaded):
scikit-image's ``astronaut()`` (Eileen Collins, NASA) and matplotlib's ``grace_hopper.jpg``
(Grace Hopper, U.S. Navy). Where more subjects are asked for than photos are given, the further
identities are *morphs* of the real ones: a smooth thin-plate-spline warp that moves the 68 dlib
landmarks to a new face geometry (inter-ocular distance, eye size, brow height, face width, chin
length, nose width and length, mouth width, height and position), plus a new skin tone. Each
change is drawn per identity; ``strength`` scales them all (0: copies of the photo).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import procrustes

from merec.errors import MerecError
from merec.io import read_image
from merec.landmarks import GROUPS, detect_faces, eye_centres, interocular_distance


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Photo:
    """A face photo that ships inside an installed package."""

    name: str
    package: str
    licence: str
    load: Callable[[], np.ndarray]


BUILTIN_PHOTOS: tuple[Photo, ...] = (
    Photo("astronaut", "scikit-image (skimage.data.astronaut)", "public domain (NASA)", _astronaut),
    Photo("grace_hopper", "matplotlib (sample_data/grace_hopper.jpg)", "public domain (U.S. Navy)", _grace_hopper),
)


@dataclass(frozen=True)
class Identity:
    """One synthetic person: an RGB uint8 image of the face and its 68 landmarks (x, y)."""

    name: str
    source: str
    real: bool
    image: np.ndarray
    landmarks: np.ndarray


def load_photos(paths: Sequence[str]) -> list[Identity]:
    """The real identities: the given photo files, or the built-in photos when none are given."""
    images = [(str(p), str(p), read_image(p)) for p in paths] or [
        (photo.name, photo.package, photo.load()) for photo in BUILTIN_PHOTOS
    ]
    identities = []
    for name, source, image in images:
        faces = detect_faces(image, upsample=1)
        if not faces:
            raise MerecError(f"{name}: dlib finds no face in this photo; use a frontal face photo")
        identities.append(Identity(name, source, True, image, faces[0].landmarks))
    return identities


def _face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Origin (eye midpoint), rotation (image -> face axes, eyes along x) and the inter-ocular distance."""
    right, left = eye_centres(landmarks)
    angle = np.arctan2(left[1] - right[1], left[0] - right[0])
    cos, sin = np.cos(angle), np.sin(angle)
    return (right + left) / 2, np.array([[cos, sin], [-sin, cos]]), interocular_distance(landmarks)


def morph_geometry(landmarks: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """New landmark positions: another face geometry drawn around ``landmarks`` (units of the eye distance)."""
    origin, rotation, iod = _face_frame(landmarks)
    face = (landmarks - origin) @ rotation.T / iod  # eyes at (-0.5, 0) and (0.5, 0), y down

    def factor(low: float, high: float) -> float:
        return 1.0 + strength * (float(rng.uniform(low, high)) - 1.0)

    def shift(low: float, high: float) -> float:
        return strength * float(rng.uniform(low, high))

    out = face.copy()
    eyes = GROUPS["right_eye"] + GROUPS["left_eye"]
    brows = GROUPS["right_brow"] + GROUPS["left_brow"]
    for group in ("right_eye", "left_eye"):  # eye size around each eye's centre
        points = GROUPS[group]
        centre = face[points].mean(axis=0)
        out[points] = centre + (face[points] - centre) * factor(0.85, 1.18)
    spacing = factor(0.88, 1.12)  # inter-ocular distance: eyes and brows move apart or together
    out[eyes + brows, 0] *= spacing
    out[brows, 1] += shift(-0.09, 0.09)
    jaw = GROUPS["jaw"]
    out[jaw, 0] *= factor(0.88, 1.12)
    depth = np.clip(face[jaw, 1] / max(face[jaw, 1].max(), 1e-6), 0, 1)  # 1 at the chin
    out[jaw, 1] += shift(-0.1, 0.12) * depth**2
    nose = list(range(31, 36))
    centre = face[nose].mean(axis=0)
    out[nose, 0] = centre[0] + (face[nose, 0] - centre[0]) * factor(0.82, 1.22)
    out[list(range(30, 36)), 1] += shift(-0.06, 0.08)
    mouth = GROUPS["mouth"]
    centre = face[mouth].mean(axis=0)
    out[mouth, 0] = centre[0] + (face[mouth, 0] - centre[0]) * factor(0.84, 1.2)
    out[mouth, 1] = centre[1] + (face[mouth, 1] - centre[1]) * factor(0.85, 1.25) + shift(-0.06, 0.08)
    return out * iod @ rotation + origin


def _anchors(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Points that stay put: the image border and a ring around the face."""
    height, width = shape
    edge = np.linspace(0, 1, 9)
    border = np.concatenate(
        [
            np.column_stack([edge * (width - 1), np.zeros(9)]),
            np.column_stack([edge * (width - 1), np.full(9, height - 1)]),
            np.column_stack([np.zeros(7), edge[1:-1] * (height - 1)]),
            np.column_stack([np.full(7, width - 1), edge[1:-1] * (height - 1)]),
        ]
    )
    centre = landmarks.mean(axis=0)
    radius = 1.5 * np.linalg.norm(landmarks - centre, axis=1).max()
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + radius * np.column_stack([np.cos(angles), np.sin(angles)])
    margin = 0.05 * min(height, width)  # a ring point next to a border point would make the spline ill-posed
    inside = (margin < ring[:, 0]) & (ring[:, 0] < width - 1 - margin)
    inside &= (margin < ring[:, 1]) & (ring[:, 1] < height - 1 - margin)
    return np.concatenate([border, ring[inside]])


def warp_to(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` warped smoothly (thin-plate spline) so that the points ``source`` land on ``target``."""
    height, width = image.shape[:2]
    fixed = _anchors(source, (height, width))
    came_from = np.concatenate([source, fixed])
    moved_to = np.concatenate([target, fixed])
    # coinciding landmarks (the inner lips of a closed mouth) would make the spline singular
    _, first = np.unique(np.round(came_from, 3), axis=0, return_index=True)
    came_from, moved_to = came_from[np.sort(first)], moved_to[np.sort(first)]
    spline = RBFInterpolator(moved_to, came_from - moved_to, kernel="thin_plate_spline")
    step = 4  # the warp is smooth: evaluate it on a coarse grid, then interpolate
    rows_n, cols_n = -(-height // step), -(-width // step)
    # coarse node k sits at pixel (k + 0.5) * step - 0.5, where cv2.resize puts it when scaling by `step`
    ys, xs = np.meshgrid((np.arange(rows_n) + 0.5) * step - 0.5, (np.arange(cols_n) + 0.5) * step - 0.5, indexing="ij")
    offsets = spline(np.column_stack([xs.ravel(), ys.ravel()])).reshape(rows_n, cols_n, 2).astype(np.float32)
    offsets = cv2.resize(offsets, (cols_n * step, rows_n * step), interpolation=cv2.INTER_LINEAR)[:height, :width]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = cols + offsets[..., 0], rows + offsets[..., 1]
    return cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def _skin_tone(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """The face region (jaw, brows and forehead) lighter or darker and warmer or cooler."""
    _, _, iod = _face_frame(landmarks)
    outline = landmarks[GROUPS["jaw"] + GROUPS["left_brow"][::-1] + GROUPS["right_brow"][::-1]].copy()
    outline[17:, 1] -= 0.5 * iod  # include the forehead
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.rint(outline).astype(np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=0.15 * iod)[..., None]
    lightness = 1.0 + strength * float(rng.uniform(-0.18, 0.12))
    warmth = strength * float(rng.uniform(-0.06, 0.06))
    gain = np.array([lightness * (1 + warmth), lightness, lightness * (1 - warmth)], np.float32)
    toned = image.astype(np.float32) * (1 + mask * (gain - 1))
    return np.clip(np.rint(toned), 0, 255).astype(np.uint8)


def shape_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Procrustes disparity of two landmark sets: their difference in shape after position, scale and rotation."""
    return float(procrustes(first, second)[2])


def morph(
    identity: Identity,
    name: str,
    rng: np.random.Generator,
    strength: float = 1.0,
    others: Sequence[np.ndarray] = (),
    candidates: int = 8,
) -> Identity:
    """Another person made from ``identity``: new face geometry and skin tone.

    Of ``candidates`` geometries drawn, the one farthest in shape from every face in ``others``
    (and from ``identity``) is kept, so that no two identities end up nearly alike.
    """
    known = [identity.landmarks, *others]
    drawn = [morph_geometry(identity.landmarks, rng, strength) for _ in range(candidates if strength > 0 else 1)]
    target = max(drawn, key=lambda shape: min(shape_distance(shape, face) for face in known))
    image = warp_to(identity.image, identity.landmarks, target)
    image = _skin_tone(image, target, rng, strength)
    return Identity(name, f"morph of {identity.name}", False, image, target)


def make_identities(
    count: int, rng: np.random.Generator, photos: Sequence[str] = (), strength: float = 1.0
) -> list[Identity]:
    """``count`` identities: the real photos first, then morphs of them in turn."""
    real = load_photos(photos)
    identities = real[:count]
    for index in range(len(identities), count):
        base = real[index % len(real)]
        others = [known.landmarks for known in identities]
        identities.append(morph(base, f"{base.name}-morph{index // len(real)}", rng, strength, others))
    return identities
