"""Face stage: detect the face on the onset frame, align on the eye centres, crop every frame.

dlib's HOG detector and 68-point predictor run on the onset frame only; the similarity transform
that puts the eye centres at fixed positions of a ``size`` x ``size`` crop is then applied to every
frame from onset to offset, so motion between frames is preserved (no per-frame re-alignment).
Output per sample: ``<sample>.npz`` with ``frames`` (T, size, size, 3) uint8 RGB, ``landmarks``
(68, 2) onset landmarks in crop coordinates, ``transform`` (2, 3), ``frame_numbers`` (T,) and
``apex_index``. Samples whose face cannot be found are an error, or listed in ``skipped.csv``
under ``on_error: skip``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from merec.datasets import clip_frame_paths
from merec.io import MerecError, PathLike, atomic_dir, read_image, save_npz, write_csv
from merec.landmarks import detect_faces, eye_centres
from merec.runtime import progress

LOG = logging.getLogger("merec.face")


@dataclass(frozen=True)
class FaceParams:
    """The ``face`` section of params.yaml."""

    size: int = 128
    upsample: int = 1
    min_score: float = 0.0
    eye_y: float = 0.38
    eye_distance: float = 0.36
    on_error: str = "fail"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FaceParams:
        return cls(**dict(values))


def alignment_transform(landmarks: np.ndarray, params: FaceParams) -> np.ndarray:
    """2x3 similarity transform mapping the eye centres onto their target crop positions."""
    right, left = eye_centres(landmarks)
    size = params.size
    target_right = np.array([(0.5 - params.eye_distance / 2) * size, params.eye_y * size])
    target_left = np.array([(0.5 + params.eye_distance / 2) * size, params.eye_y * size])
    source = left - right
    target = target_left - target_right
    scale = np.linalg.norm(target) / np.linalg.norm(source)
    angle = np.arctan2(target[1], target[0]) - np.arctan2(source[1], source[0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = target_right - rotation @ right
    return np.hstack([rotation, offset[:, None]])


def apply_transform(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with a 2x3 affine transform."""
    return points @ transform[:, :2].T + transform[:, 2]


def align_clip(frames: list[np.ndarray], apex_index: int, sample: str, params: FaceParams) -> dict[str, np.ndarray]:
    """Detect on frame 0 (the onset) and crop every frame with the same transform."""
    faces = detect_faces(frames[0], upsample=params.upsample, min_score=params.min_score)
    if not faces:
        raise MerecError(
            f"sample {sample}: no face found on the onset frame; check the frames, or raise "
            "face.upsample for small faces, or set face.on_error: skip"
        )
    if len(faces) > 1:
        boxes = ", ".join(str(face.box) for face in faces)
        raise MerecError(
            f"sample {sample}: {len(faces)} faces found on the onset frame ({boxes}); "
            "merec expects one face per clip: crop the frames or raise face.min_score"
        )
    transform = alignment_transform(faces[0].landmarks, params)
    size = (params.size, params.size)
    crops = np.stack(
        [cv2.warpAffine(f, transform, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for f in frames]
    )
    return {
        "frames": crops,
        "landmarks": apply_transform(transform, faces[0].landmarks).astype(np.float32),
        "transform": transform.astype(np.float32),
        "apex_index": np.int64(apex_index),
    }


def _read_clip(row: pd.Series) -> tuple[list[np.ndarray], np.ndarray]:
    paths = clip_frame_paths(row)
    frames = [read_image(path) for path in paths]
    shapes = {frame.shape for frame in frames}
    if len(shapes) > 1:
        sizes = ", ".join(f"{p.name}: {f.shape[1]}x{f.shape[0]}" for p, f in zip(paths, frames, strict=True))
        raise MerecError(f"sample {row['sample']}: frames differ in size ({sizes}); all frames of a clip must match")
    numbers = np.arange(int(row["onset"]), int(row["offset"]) + 1)
    return frames, numbers


def run(samples_csv: PathLike, output_dir: PathLike, params: FaceParams) -> pd.DataFrame:
    """Align every sample of the table; returns the skipped samples (empty unless on_error=skip)."""
    if params.on_error not in ("fail", "skip"):
        raise MerecError(f"face.on_error must be 'fail' or 'skip', got {params.on_error!r}")
    samples = pd.read_csv(samples_csv, dtype={"subject": str, "fold": str, "sample": str})
    skipped = []
    with atomic_dir(output_dir) as tmp:
        for _, row in progress(samples.iterrows(), "face", total=len(samples)):
            try:
                frames, numbers = _read_clip(row)
                aligned = align_clip(frames, int(row["apex"]) - int(row["onset"]), row["sample"], params)
            except MerecError as exc:
                if params.on_error == "fail":
                    raise
                LOG.warning("skipping %s", exc)
                skipped.append({"sample": row["sample"], "subject": row["subject"], "reason": str(exc)})
                continue
            save_npz(Path(tmp) / f"{row['sample']}.npz", frame_numbers=numbers, **aligned)
        report = pd.DataFrame(skipped, columns=["sample", "subject", "reason"])
        write_csv(Path(tmp) / "skipped.csv", report)
    LOG.info("aligned %d of %d samples (%d skipped)", len(samples) - len(report), len(samples), len(report))
    return report
