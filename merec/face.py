"""Face stage: detect the face on the onset frame, align on the eye centres, crop every frame.

dlib's HOG detector and 68-point predictor run on the onset frame only; the similarity transform
that puts the eye centres at fixed positions of a ``size`` x ``size`` crop is then applied to every
frame from onset to offset, so motion between frames is preserved (no per-frame re-alignment).
Output per sample: ``<sample>.npz`` with ``frames`` (T, size, size, 3) uint8 RGB, ``landmarks``
(68, 2) onset landmarks in crop coordinates, ``transform`` (2, 3), ``frame_numbers`` (T,) and
``apex_index``.

Bad clips (a missing, empty, corrupt or truncated frame, frames of different sizes, no face on the
onset frame, two faces of similar size) are an error naming the sample and the file, or, under
``face.on_error: skip``, left out and listed in ``<output>/skipped.csv`` (sample, subject, reason).
Skipping never changes the fold set silently: when every clip of a subject would be skipped the
stage fails, because that subject's LOSO fold (listed in samples.csv) would have nothing to test.

Two faces: MER clips show one participant close to the camera, so a second, much smaller detection
(a face in the background or a false detection) is ignored with a logged warning and the largest
face is used. When the second face is at least :data:`AMBIGUOUS_AREA` times the size of the largest,
merec cannot tell which one is the participant and the clip is an error (or skipped).
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merec.config import Params
from merec.datasets.frames import clip_frame_paths
from merec.datasets.ids import is_safe_id
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, read_image, save_npz, write_csv
from merec.landmarks import Face, detect_faces, eye_centres
from merec.runtime import available_threads, ordered_map

LOG = logging.getLogger("merec.face")
AMBIGUOUS_AREA = 0.5  # a second face at least this fraction of the largest one's area is an error


@dataclass(frozen=True)
class FaceParams(Params):
    """The ``face`` section of params.yaml (defaults and constraints: the params schema)."""

    section = "face"
    size: int
    upsample: int
    min_score: float
    eye_y: float
    eye_distance: float
    on_error: str


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


def box_area(face: Face) -> int:
    """Area of a face's detection box in pixels."""
    left, top, right, bottom = face.box
    return max(0, right - left) * max(0, bottom - top)


def choose_face(faces: list[Face], sample: str, where: str = "the onset frame") -> Face:
    """The participant's face: the largest detection, unless a second one is of similar size."""
    if not faces:
        raise MerecError(
            f"sample {sample}: no face found on {where}; check the frames, or raise "
            "face.upsample for small faces, or set face.on_error: skip"
        )
    ranked = sorted(faces, key=lambda face: (-box_area(face), -face.score))
    chosen = ranked[0]
    if len(ranked) > 1:
        boxes = ", ".join(f"{face.box} ({box_area(face)} px)" for face in ranked)
        if box_area(ranked[1]) >= AMBIGUOUS_AREA * box_area(chosen):
            raise MerecError(
                f"sample {sample}: {len(ranked)} faces of similar size found on {where} "
                f"(boxes left, top, right, bottom: {boxes}); merec cannot tell which is the participant: "
                "crop the frames to one person, raise face.min_score if one is a false detection, "
                "or set face.on_error: skip"
            )
        LOG.warning(
            "sample %s: %d faces found on %s (%s); using the largest, %s", sample, len(ranked), where, boxes, chosen.box
        )
    return chosen


def align_clip(
    frames: list[np.ndarray], apex_index: int, sample: str, params: FaceParams, where: str = "the onset frame"
) -> dict[str, np.ndarray]:
    """Detect on frame 0 (the onset) and crop every frame with the same transform."""
    faces = detect_faces(frames[0], upsample=params.upsample, min_score=params.min_score)
    face = choose_face(faces, sample, where)
    transform = alignment_transform(face.landmarks, params)
    size = (params.size, params.size)
    crops = np.stack(
        [cv2.warpAffine(f, transform, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for f in frames]
    )
    return {
        "frames": crops,
        "landmarks": apply_transform(transform, face.landmarks).astype(np.float32),
        "transform": transform.astype(np.float32),
        "apex_index": np.int64(apex_index),
    }


def _read_clip(row: pd.Series) -> tuple[list[np.ndarray], np.ndarray, list[Path]]:
    sample = row["sample"]
    paths = clip_frame_paths(row)
    frames = []
    for path in paths:
        try:
            frames.append(read_image(path))
        except MerecError as exc:
            raise MerecError(f"sample {sample}: {exc}") from exc
    check_frame_sizes(frames, paths, sample)
    numbers = np.arange(int(row["onset"]), int(row["offset"]) + 1)
    return frames, numbers, paths


def check_frame_sizes(frames: list[np.ndarray], paths: list[Path], sample: str) -> None:
    """All frames of a clip must have one size; the error names the frames that differ."""
    sizes = [frame.shape[:2] for frame in frames]
    counts: dict[tuple[int, ...], int] = {}
    for size in sizes:
        counts[size] = counts.get(size, 0) + 1
    if len(counts) < 2:
        return
    usual = max(counts, key=lambda size: (counts[size], size == sizes[0]))
    odd = [(path, size) for path, size in zip(paths, sizes, strict=True) if size != usual]
    listed = ", ".join(f"{path.name} is {size[1]}x{size[0]}" for path, size in odd[:10])
    more = f" and {len(odd) - 10} more" if len(odd) > 10 else ""
    raise MerecError(
        f"sample {sample}: frames differ in size in {paths[0].parent}: most are {usual[1]}x{usual[0]} but "
        f"{listed}{more}; restore these frame files from the original data (every frame of a clip must match)"
    )


def run(samples_csv: PathLike, output_dir: PathLike, params: FaceParams) -> pd.DataFrame:
    """Align every sample of the table; returns the skipped samples (empty unless on_error=skip)."""
    samples = pd.read_csv(samples_csv, dtype={"subject": str, "fold": str, "sample": str})
    _check_sample_ids(samples, samples_csv)
    skipped = []
    workers = available_threads()
    if workers > 1:
        cv2.setNumThreads(1)  # one clip per worker process instead
    with atomic_dir(output_dir) as tmp:
        rows = [row for _, row in samples.iterrows()]
        jobs = [(row, Path(tmp), params) for row in rows]
        results = ordered_map(_align_sample, jobs, workers, "face")
        with closing(results):  # on an error, stop the workers before the temporary folder goes
            for row, (failure, records) in zip(rows, results, strict=True):
                for record in records:  # warnings of the worker, in sample order
                    logging.getLogger(record.name).handle(record)
                if failure is None:
                    continue
                if params.on_error == "fail":
                    raise MerecError(failure)
                LOG.warning("skipping %s", failure)
                skipped.append({"sample": row["sample"], "subject": row["subject"], "reason": failure})
        report = pd.DataFrame(skipped, columns=["sample", "subject", "reason"])
        _check_no_subject_lost(samples, report)
        write_csv(Path(tmp) / "skipped.csv", report)
    LOG.info("aligned %d of %d samples (%d skipped)", len(samples) - len(report), len(samples), len(report))
    return report


class _Collect(logging.Handler):
    """Keeps a worker's log records (message formatted) so that the main process can emit them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


def _align_sample(job: tuple[pd.Series, Path, FaceParams]) -> tuple[str | None, list[logging.LogRecord]]:
    """Align one sample into ``folder``: the error message when it cannot be, and the log records."""
    row, folder, params = job
    package = logging.getLogger("merec")
    collect, propagate = _Collect(), package.propagate
    package.addHandler(collect)
    package.propagate = False
    try:
        frames, numbers, paths = _read_clip(row)
        where = f"the onset frame {paths[0]}"
        aligned = align_clip(frames, int(row["apex"]) - int(row["onset"]), row["sample"], params, where)
    except MerecError as exc:
        return str(exc), collect.records
    else:
        save_npz(folder / f"{row['sample']}.npz", frame_numbers=numbers, **aligned)
    finally:
        package.removeHandler(collect)
        package.propagate = propagate
    return None, collect.records


def _check_sample_ids(samples: pd.DataFrame, samples_csv: PathLike) -> None:
    """Sample ids name output files: they must be plain names (ingest makes them so)."""
    for line, sample in enumerate(samples["sample"], start=2):
        if not isinstance(sample, str) or not is_safe_id(sample):
            raise MerecError(
                f"{samples_csv} line {line}: sample id {sample!r} is not a plain name (letters, digits, "
                "'_', '.', '-'); samples.csv is written by the ingest stage: rerun it instead of editing the file"
            )


def _check_no_subject_lost(samples: pd.DataFrame, report: pd.DataFrame) -> None:
    """Fail when skipping left a subject (a LOSO fold of samples.csv) without any aligned clip."""
    if report.empty:
        return
    total = samples.groupby("subject")["sample"].count()
    dropped = report.groupby("subject")["sample"].count()
    lost = sorted(subject for subject, count in dropped.items() if count >= total.get(subject, 0))
    if not lost:
        return
    lines = [
        f"face.on_error: skip would leave subject(s) {', '.join(lost)} without any clip, which would silently "
        "remove their LOSO folds; fix the frames named below, or leave those subjects out of the dataset "
        "(e.g. a copy of the annotation without their rows, set as datasets.<name>.annotation):"
    ]
    for subject in lost:
        rows = report[report["subject"] == subject]
        lines.extend(f"  - {sample}: {reason}" for sample, reason in zip(rows["sample"], rows["reason"], strict=True))
    raise MerecError("\n".join(lines))
