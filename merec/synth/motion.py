"""Facial motion of the synthetic dataset: action units with per-subject morphology, blinks, head parallax.

Every AU is a sum of smooth displacement components anchored on dlib landmarks (see
:data:`AU_FIELDS`). A subject's *style* (:class:`AuStyle`) changes each component the way people
differ: the anchor shifts, the direction turns, the extent, elongation and orientation change, the
two sides move unequally, a weaker satellite component pulls beside the main one (the field is not
one Gaussian per AU), and the rise and fall of the expression follow the subject's own timing.
``variation`` scales every one of these (0: every subject moves alike, one Gaussian per anchor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_IOD = 0.36 * 128  # inter-ocular distance (px) of a default 128-px aligned crop

# AU -> list of (landmark indices whose mean anchors the component, direction (x right, y down) in
# face coordinates, sigma in inter-ocular distances). Directions are scaled by the AU amplitude.
AU_FIELDS: dict[int, list[tuple[list[int], tuple[float, float], float]]] = {
    1: [([20, 21], (0.15, -1.0), 0.22), ([22, 23], (-0.15, -1.0), 0.22)],
    2: [([17, 18], (0.0, -1.0), 0.22), ([25, 26], (0.0, -1.0), 0.22)],
    4: [([19, 20, 21], (0.5, 0.8), 0.25), ([22, 23, 24], (-0.5, 0.8), 0.25)],
    5: [([37, 38], (0.0, -0.6), 0.14), ([43, 44], (0.0, -0.6), 0.14)],
    6: [([40, 41, 31], (0.0, -0.8), 0.3), ([46, 47, 35], (0.0, -0.8), 0.3)],
    7: [([40, 41], (0.0, -0.7), 0.14), ([46, 47], (0.0, -0.7), 0.14)],
    12: [([48], (-0.7, -0.7), 0.22), ([54], (0.7, -0.7), 0.22)],
    14: [([48], (0.7, -0.15), 0.2), ([54], (-0.7, -0.15), 0.2)],
    10: [([50, 51], (0.0, -0.8), 0.18), ([52, 51], (0.0, -0.8), 0.18)],
    15: [([48], (-0.2, 1.0), 0.22), ([54], (0.2, 1.0), 0.22)],
    17: [([57, 58, 8], (0.0, -0.8), 0.25), ([57, 56, 8], (0.0, -0.8), 0.25)],
    20: [([48], (-1.0, 0.1), 0.2), ([54], (1.0, 0.1), 0.2)],
    25: [([57, 58], (0.0, 0.7), 0.18), ([57, 56], (0.0, 0.7), 0.18)],
}
BLINK_FIELD = [([37, 38], (0.0, 1.0), 0.12), ([43, 44], (0.0, 1.0), 0.12)]


@dataclass(frozen=True)
class Component:
    """One anisotropic Gaussian component of a displacement field (face coordinates, eye distances)."""

    anchor: tuple[int, ...]
    offset: tuple[float, float]  # of the centre from the landmarks' mean
    direction: tuple[float, float]
    sigma: float
    elongation: float  # ratio of the long to the short axis
    orientation: float  # radians, of the long axis
    gain: float


@dataclass(frozen=True)
class AuStyle:
    """How one subject moves: each AU's components and the shape of the temporal profile."""

    components: dict[int, tuple[tuple[Component, ...], ...]]  # AU -> per side (index 0: subject's right)
    rise_power: float
    fall_power: float


def _turn(vector: tuple[float, float], angle: float) -> tuple[float, float]:
    cos, sin = np.cos(angle), np.sin(angle)
    return (cos * vector[0] - sin * vector[1], sin * vector[0] + cos * vector[1])


def draw_style(rng: np.random.Generator, variation: float = 1.0) -> AuStyle:
    """A subject's AU morphology; ``variation`` 0 gives the canonical one for everybody."""
    components: dict[int, tuple[tuple[Component, ...], ...]] = {}
    for au, sides in sorted(AU_FIELDS.items()):
        weaker = int(rng.integers(0, 2))  # asymmetry: one side moves less
        asymmetry = 1.0 - variation * float(rng.uniform(0.0, 0.35))
        per_side = []
        for side, (anchor, direction, sigma) in enumerate(sides):
            direction = _turn(direction, variation * float(rng.normal(0.0, np.deg2rad(15.0))))
            main = Component(
                anchor=tuple(anchor),
                offset=tuple(variation * rng.normal(0.0, 0.05, 2)),
                direction=direction,
                sigma=sigma * (1.0 + variation * float(rng.uniform(-0.2, 0.25))),
                elongation=1.0 + variation * float(rng.uniform(0.0, 0.8)),
                orientation=float(rng.uniform(0.0, np.pi)),
                gain=asymmetry if side == weaker else 1.0,
            )
            angle = float(rng.uniform(0.0, 2 * np.pi))
            satellite = Component(
                anchor=tuple(anchor),
                offset=(main.offset[0] + 0.6 * sigma * np.cos(angle), main.offset[1] + 0.6 * sigma * np.sin(angle)),
                direction=_turn(direction, float(rng.uniform(-0.7, 0.7))),
                sigma=0.7 * main.sigma,
                elongation=1.0,
                orientation=0.0,
                gain=main.gain * variation * float(rng.uniform(0.2, 0.5)),
            )
            per_side.append((main, satellite) if satellite.gain > 0 else (main,))
        components[au] = tuple(per_side)
    return AuStyle(
        components=components,
        rise_power=float(np.exp(variation * rng.uniform(-0.5, 0.5))),
        fall_power=float(np.exp(variation * rng.uniform(-0.5, 0.5))),
    )


def canonical_components(
    specs: list[tuple[list[int], tuple[float, float], float]],
) -> tuple[tuple[Component, ...], ...]:
    """Isotropic single-Gaussian components, as :data:`AU_FIELDS` or :data:`BLINK_FIELD` state them."""
    return tuple(
        (Component(tuple(anchor), (0.0, 0.0), direction, sigma, 1.0, 0.0, 1.0),) for anchor, direction, sigma in specs
    )


def displacement_field(
    sides: tuple[tuple[Component, ...], ...],
    landmarks: np.ndarray,
    rotation: np.ndarray,
    iod: float,
    shape: tuple[int, int],
    which: str = "",
) -> np.ndarray:
    """Field (2, H, W) in pixels per unit amplitude (1 px at REFERENCE_IOD); ``which`` R or L: that side only."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.zeros((2, height, width), np.float32)
    unit = iod / REFERENCE_IOD
    for index, components in enumerate(sides):
        if (which == "R" and index == 1) or (which == "L" and index == 0):
            continue  # one-sided AU: subject's right = first (image-left) anchor
        for part in components:
            centre = landmarks[list(part.anchor)].mean(axis=0) + rotation @ np.asarray(part.offset) * iod
            vector = rotation @ np.asarray(part.direction, np.float64) * unit * part.gain
            axis = rotation @ np.array([np.cos(part.orientation), np.sin(part.orientation)])
            dx, dy = xs - centre[0], ys - centre[1]
            along = dx * axis[0] + dy * axis[1]
            across = -dx * axis[1] + dy * axis[0]
            long_sigma = part.sigma * iod * np.sqrt(part.elongation)
            short_sigma = part.sigma * iod / np.sqrt(part.elongation)
            weight = np.exp(-0.5 * ((along / long_sigma) ** 2 + (across / short_sigma) ** 2))
            out[0] += vector[0] * weight
            out[1] += vector[1] * weight
    return out


def profile(
    n_frames: int, onset: int, apex: int, offset: int, rise_power: float = 1.0, fall_power: float = 1.0
) -> np.ndarray:
    """Intensity over the clip: 0 before onset, 1 at apex, 0 from the offset; raised cosines on warped time."""
    t = np.arange(n_frames, dtype=np.float64)
    rise = np.clip((t - onset) / max(apex - onset, 1), 0, 1) ** rise_power
    fall = np.clip((offset - t) / max(offset - apex, 1), 0, 1) ** fall_power
    return np.where(t <= apex, 0.5 - 0.5 * np.cos(np.pi * rise), 0.5 - 0.5 * np.cos(np.pi * fall))


def face_depth(landmarks: np.ndarray, iod: float, shape: tuple[int, int]) -> np.ndarray:
    """Relief of the face (H, W) in pixels toward the camera: an ellipsoidal head plus the nose."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = landmarks[:27].mean(axis=0)  # jaw and brows
    half_width = 1.1 * iod
    half_height = 1.45 * iod
    inside = 1.0 - ((xs - centre[0]) / half_width) ** 2 - ((ys - centre[1]) / half_height) ** 2
    head = 0.9 * iod * np.sqrt(np.clip(inside, 0.0, None))
    tip = landmarks[30]
    nose = 0.35 * iod * np.exp(-((xs - tip[0]) ** 2 + (ys - tip[1]) ** 2) / (2.0 * (0.18 * iod) ** 2))
    return (head + nose).astype(np.float32)


def parallax(depth: np.ndarray, yaw: float, pitch: float, pivot: float) -> np.ndarray:
    """Image displacement (2, H, W) of a small out-of-plane head rotation (radians) about depth ``pivot``.

    With the pivot at the eyes' depth the eyes stay and the nose and cheeks move against them: what
    eye-based alignment cannot undo.
    """
    relief = depth - pivot
    return np.stack([yaw * relief, pitch * relief])


def turned_source(
    depth: np.ndarray, pivot: float, centre: np.ndarray, yaw_deg: float, pitch_deg: float, iterations: int = 8
) -> np.ndarray:
    """Where each pixel of the face turned by ``yaw_deg`` and ``pitch_deg`` comes from, (2, H, W).

    A rigid rotation of the face relief about ``centre`` (the eyes' midpoint, at depth ``pivot``)
    with foreshortening: x' = c + (x - c) cos(yaw) + (z - pivot) sin(yaw), and likewise in y for
    the pitch (yaw > 0 turns the face to the image's right, pitch > 0 down). The backward map is
    found by fixed-point iteration on the depth at the current source estimate.
    """
    import cv2

    height, width = depth.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    yaw, pitch = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    source_x, source_y = xs.copy(), ys.copy()
    for _ in range(iterations):
        relief = cv2.remap(depth, source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) - pivot
        source_x = (centre[0] + (xs - centre[0] - relief * np.sin(yaw)) / np.cos(yaw)).astype(np.float32)
        source_y = (centre[1] + (ys - centre[1] - relief * np.sin(pitch)) / np.cos(pitch)).astype(np.float32)
    return np.stack([source_x, source_y])


def turned(source: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """The displacement (2, H, W) of the turned face that moves by ``displacement`` before the turn."""
    import cv2

    height, width = source.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    moved = [
        cv2.remap(np.ascontiguousarray(part, np.float32), source[0], source[1], cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE)
        for part in displacement
    ]  # fmt: skip
    return np.stack([xs - source[0] + moved[0], ys - source[1] + moved[1]])


def divergence(displacement: np.ndarray) -> np.ndarray:
    """Divergence (H, W) of a displacement field: stretched skin (> 0) brightens, compressed skin darkens."""
    return np.gradient(displacement[0], axis=1) + np.gradient(displacement[1], axis=0)
