"""Frontalization without a 3D face model: head pose from the 68 landmarks, then a frontal warp.

No licensed 3D model (DECA, FLAME, a morphable model) can ship with merec. Instead:

1. **Pose.** A generic 3D shape of the 68 dlib landmarks (``weights/face_shape.csv``, written by
   ``workflow/scripts/face_shape.py``: x, y averaged over the shipped face photos, z from rough
   anthropometric depths) is fitted to the detected landmarks by a scaled-orthographic camera
   (least squares, then the nearest rotation) on the 11 rigid landmarks (nose, eye corners):
   :func:`estimate_pose`. The jaw contour slides along the silhouette under rotation and brows and
   lips move with the expression, so they are left out (chosen on the development draw, docs/face.md).
2. **Frontal landmarks.** Each landmark keeps its observed position but is given the generic
   shape's depth; undoing the rotation moves it where a frontal view would show it
   (:func:`frontal_landmarks`): the person's own face geometry stays, the pose goes.
3. **Warp.** A piecewise-affine map on the Delaunay triangulation of the landmarks (scikit-image)
   takes the frontal landmarks to the observed ones; outside the landmarks' hull a global affine
   fit continues it. :func:`frontal_maps` turns it, composed with the eye-centre similarity crop,
   into one dense map for ``cv2.remap``, computed on the onset and applied to every frame (motion
   between frames is preserved, as with the similarity crop).
4. **Occluded half.** Beyond ``mirror_yaw_deg`` of yaw, the half of the face turned away from the
   camera is mostly hidden or stretched; it is replaced by the mirror image of the visible half
   (:func:`mirror_weights`), with a soft seam at the midline. This removes that half's own motion
   (micro-expressions are often asymmetric): keep the threshold high unless the data need it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from merec.errors import MerecError

SHAPE_PATH = Path(__file__).with_name("weights") / "face_shape.csv"
# the rigid points: nose bridge and tip, nostril wings and base, eye corners (not the jaw contour,
# which slides along the silhouette under rotation, nor brows and lips, which move with expressions)
POSE_POINTS = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])
MAX_ANGLE_DEG = 60.0  # beyond this a frontal view cannot be recovered from one side's landmarks
SEAM = 0.08  # width of the soft midline seam of the mirrored half, as a fraction of the crop


@functools.lru_cache(maxsize=1)
def generic_shape() -> np.ndarray:
    """The generic (68, 3) landmark shape in camera axes: x right, y down, z away from the camera,
    in inter-ocular distances from the eye midpoint."""
    if not SHAPE_PATH.is_file():
        raise MerecError(f"{SHAPE_PATH} is missing: reinstall merec or run workflow/scripts/face_shape.py")
    table = np.loadtxt(SHAPE_PATH, delimiter=",", comments="#", skiprows=2)
    if table.shape != (68, 4):
        raise MerecError(f"{SHAPE_PATH}: expected 68 rows of index,x,y,z, found {table.shape}")
    return table[:, 1:] * np.array([1.0, 1.0, -1.0])  # the file's z points toward the camera


@dataclass(frozen=True)
class Pose:
    """A scaled-orthographic head pose: image point = ``scale`` * (``rotation`` @ X)[:2] + ``offset``."""

    rotation: np.ndarray  # (3, 3), a proper rotation; the identity for a frontal face
    scale: float  # pixels per inter-ocular distance of the generic shape
    offset: np.ndarray  # (2,), image position of the generic shape's eye midpoint

    @property
    def yaw_deg(self) -> float:
        """Turn about the vertical axis; > 0 when the face turns toward the image's right."""
        return float(np.degrees(np.arcsin(np.clip(-self.rotation[0, 2], -1.0, 1.0))))

    @property
    def pitch_deg(self) -> float:
        """Turn about the horizontal axis; > 0 when the face turns down."""
        return float(np.degrees(np.arcsin(np.clip(-self.rotation[1, 2], -1.0, 1.0))))

    @property
    def roll_deg(self) -> float:
        """In-plane turn; > 0 clockwise in the image."""
        return float(np.degrees(np.arctan2(self.rotation[1, 0], self.rotation[0, 0])))

    def angles(self) -> np.ndarray:
        """(yaw, pitch, roll) in degrees."""
        return np.array([self.yaw_deg, self.pitch_deg, self.roll_deg], np.float32)


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Fit the generic shape to (68, 2) image landmarks: least-squares affine camera, nearest rotation."""
    model = generic_shape()[POSE_POINTS]
    points = np.asarray(landmarks, np.float64)[POSE_POINTS]
    design = np.column_stack([model, np.ones(len(model))])
    solution, *_ = np.linalg.lstsq(design, points, rcond=None)  # (4, 2)
    affine, offset = solution[:3].T, solution[3]
    left, singular, right = np.linalg.svd(affine, full_matrices=False)
    rows = left @ right  # the closest pair of orthonormal rows
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    return Pose(rotation, float(singular.mean()), offset)


def frontal_landmarks(landmarks: np.ndarray, pose: Pose) -> np.ndarray:
    """Where a frontal view (no yaw, pitch or roll) would show each landmark, in image pixels.

    Each landmark keeps its observed image position and takes the generic shape's depth; solving
    the camera equation for its x, y and dropping the rotation gives its frontal position.
    """
    angle = max(abs(pose.yaw_deg), abs(pose.pitch_deg))
    if angle > MAX_ANGLE_DEG:
        raise MerecError(
            f"the head is turned {angle:.0f} degrees from frontal (more than {MAX_ANGLE_DEG:.0f}): "
            "too far to frontalize; use face.align: similarity"
        )
    depth = generic_shape()[:, 2]
    in_plane, towards = pose.rotation[:2, :2], pose.rotation[:2, 2]
    relative = (np.asarray(landmarks, np.float64) - pose.offset) / pose.scale - np.outer(depth, towards)
    xy = np.linalg.solve(in_plane, relative.T).T
    return pose.scale * xy + pose.offset


def _affine_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 affine map from ``source`` to ``target`` points."""
    design = np.column_stack([source, np.ones(len(source))])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def frontal_maps(
    observed: np.ndarray, frontal: np.ndarray, crop: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (size, size) from the crop to the observed image.

    ``crop`` is the 2x3 similarity from frontal image coordinates to the crop; a crop pixel goes
    back through it, then through the piecewise-affine warp taking frontal landmarks to observed
    ones (a global affine fit outside the landmarks' hull).
    """
    from skimage.transform import PiecewiseAffineTransform

    global_fit = _affine_fit(frontal, observed)
    low, high = frontal.min(axis=0), frontal.max(axis=0)
    margin = 0.6 * (high - low)
    corners = np.array([[0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1], [0.5, 1], [0, 1], [0, 0.5]])
    anchors = low - margin + corners * (high - low + 2 * margin)
    source = np.vstack([frontal, anchors])
    target = np.vstack([observed, _apply(global_fit, anchors)])
    warp = PiecewiseAffineTransform.from_estimate(source, target)
    if not warp:
        raise MerecError(f"the frontal warp could not be estimated from the landmarks ({warp})")
    inverse = np.linalg.inv(np.vstack([crop, [0.0, 0.0, 1.0]]))[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    grid = _apply(inverse, np.column_stack([xs.ravel(), ys.ravel()]))
    mapped = warp(grid)
    outside = ~np.isfinite(mapped).all(axis=1) | (mapped == -1).all(axis=1)
    mapped[outside] = _apply(global_fit, grid[outside])
    maps = mapped.reshape(size, size, 2).astype(np.float32)
    return maps[..., 0], maps[..., 1]


def mirror_weights(pose: Pose, size: int, mirror_yaw_deg: float) -> np.ndarray | None:
    """Per-column weight (size,) of the mirrored image, or None when the yaw is within the threshold.

    The half turned away from the camera (the image's right half for a face turned right) gets
    weight 1, the other half 0, with a smooth seam of :data:`SEAM` x ``size`` at the midline.
    """
    if abs(pose.yaw_deg) <= mirror_yaw_deg:
        return None
    columns = (np.arange(size) + 0.5 - size / 2) / (SEAM * size)
    ramp = np.clip(0.5 + columns, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return (ramp if pose.yaw_deg > 0 else ramp[::-1]).astype(np.float32)


def remap_frontal(frame: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """One (H, W, 3) uint8 frame through the frontal maps; with ``weights`` (:func:`mirror_weights`),
    the turned-away half of the face taken from the mirror image."""
    crop = cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if weights is None:
        return crop
    mirrored = crop[:, ::-1]
    blend = weights[None, :, None] * mirrored + (1.0 - weights[None, :, None]) * crop
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def frontal_view(image: np.ndarray, landmarks: np.ndarray, mirror_yaw_deg: float) -> np.ndarray:
    """A square face crop re-rendered frontally, in place: the head pose estimated from its own (68, 2)
    ``landmarks`` (crop pixels) is undone with the eye midpoint and scale kept, so the frontal face
    sits where the crop's face sits. An error beyond :data:`MAX_ANGLE_DEG` (see :func:`frontal_landmarks`)."""
    pose = estimate_pose(landmarks)
    if not (np.isfinite(pose.rotation).all() and pose.scale > 1e-3):
        raise MerecError("the landmarks do not span a face (their rigid points coincide): no head pose")
    frontal = frontal_landmarks(landmarks, pose)
    size = image.shape[0]
    map_x, map_y = frontal_maps(np.asarray(landmarks, np.float64), frontal, np.eye(2, 3), size)
    return remap_frontal(image, map_x, map_y, mirror_weights(pose, size, mirror_yaw_deg))
