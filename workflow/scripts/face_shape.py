"""Write merec's generic 3D shape of the 68 dlib landmarks (``merec/weights/face_shape.csv``).

x and y: dlib's landmarks of the face photos merec ships (scikit-image's astronaut, matplotlib's
Grace Hopper), each put in face axes (origin the eye midpoint, eyes along x, inter-ocular distance
1), made left-right symmetric (each point averaged with its mirrored partner) and averaged over
the photos. z (toward the camera, same unit): rough anthropometric depths of each landmark in
front of or behind the outer eye corners, in millimetres for an adult face (face contour behind
the eyes, chin a little in front, nose tip about 30 mm in front, lips 5-15 mm), divided by a
63-mm inter-pupillary distance. The shape is one generic face, not any person's: the face stage
uses it only to estimate head pose and each landmark's depth for frontalization.

    python workflow/scripts/face_shape.py            # rewrites merec/weights/face_shape.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from merec.frontalize import SHAPE_PATH  # noqa: E402
from merec.landmarks import MIRROR, eye_centres, interocular_distance  # noqa: E402
from merec.synth.identities import load_photos  # noqa: E402

IPD_MM = 63.0
# depth in mm in front of (+) or behind (-) the outer eye corners, for the subject's right half and the midline
DEPTH_MM = {
    **dict(zip(range(0, 9), (-35, -33, -30, -26, -20, -12, -4, 2, 5), strict=True)),  # jaw, ear level to chin
    **dict(zip(range(17, 22), (-5, 2, 7, 10, 11), strict=True)),  # right brow, outer to inner
    **dict(zip(range(27, 31), (12, 17, 22, 30), strict=True)),  # nose bridge to tip
    **dict(zip(range(31, 34), (12, 15, 16), strict=True)),  # nostrils to subnasale
    **dict(zip(range(36, 42), (0, 5, 6, 4, 6, 5), strict=True)),  # right eye
    **dict(zip(range(48, 52), (4, 9, 12, 14), strict=True)),  # outer lip, corner to upper centre
    **dict(zip((57, 58, 59), (12, 10, 7), strict=True)),  # outer lip, lower centre to corner
    **dict(zip((60, 61, 62, 66, 67), (6, 10, 11, 10, 9), strict=True)),  # inner lip
}


def face_axes(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks with the eye midpoint at 0, the eyes along x and an inter-ocular distance of 1."""
    right, left = eye_centres(landmarks)
    angle = np.arctan2(left[1] - right[1], left[0] - right[0])
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    return (landmarks - (right + left) / 2) @ rotation.T / interocular_distance(landmarks)


def symmetric(points: np.ndarray) -> np.ndarray:
    """Each point averaged with its mirrored partner (x negated)."""
    mirrored = points[MIRROR] * np.array([-1.0, 1.0])
    return (points + mirrored) / 2


def main() -> int:
    shapes = [symmetric(face_axes(photo.landmarks)) for photo in load_photos([])]
    xy = np.mean(shapes, axis=0)
    z = np.zeros(68)
    for index, depth in DEPTH_MM.items():
        z[index] = z[MIRROR[index]] = depth / IPD_MM
    shape = np.column_stack([xy, z])
    lines = ["# generic 68-landmark face shape: written by workflow/scripts/face_shape.py (see its docstring)"]
    lines += ["index,x,y,z"] + [f"{i},{x:.4f},{y:.4f},{d:.4f}" for i, (x, y, d) in enumerate(shape)]
    SHAPE_PATH.write_text("\n".join(lines) + "\n")
    print(f"wrote {SHAPE_PATH.relative_to(ROOT)} from {len(shapes)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
