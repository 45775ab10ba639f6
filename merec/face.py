"""Face stage: detect the face on the onset frame, align on the eye centres, crop every frame.

dlib's HOG detector and 68-point predictor run on the onset frame only; the similarity transform
that puts the eye centres at fixed positions of a ``size`` x ``size`` crop is then applied to every
frame from onset to offset, so motion between frames is preserved (no per-frame re-alignment).
With ``align: frontalize`` the crop first undoes the head pose estimated from the landmarks
(:mod:`merec.frontalize`), again one warp for the whole clip.
The stage runs per shard (:mod:`merec.shards`): it reads the shard's clip list from ingest
(:mod:`merec.datasets.clips`) and writes one ``<sample>.npz`` per clip with ``frames`` (T, size,
size, 3) uint8 RGB, ``landmarks`` (68, 2) onset landmarks in crop coordinates, ``transform``
(2, 3: the similarity to the crop, from the frontal landmarks under ``frontalize``), ``pose``
(yaw, pitch, roll of the onset in degrees), ``frame_numbers`` (T,) and ``apex_index``, then the
shard's manifest.

Bad clips (a missing, empty, corrupt or truncated frame, frames of different sizes, no face on the
onset frame, two faces of similar size) are an error naming the sample and the file, or, under
``face.on_error: skip``, left out and listed with the reason in the shard's manifest; later stages
carry the list on, training refuses a fold whose subject lost every clip, and evaluation counts
skipped clips as errors.

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

from merec.config import Params
from merec.datasets.clips import Clip, ClipList, read_clip_list
from merec.datasets.ids import is_safe_id
from merec.errors import MerecError
from merec.frontalize import estimate_pose, frontal_landmarks, frontal_maps, mirror_weights, remap_frontal
from merec.io import PathLike, atomic_dir, read_image, save_npz
from merec.landmarks import Face, detect_faces, eye_centres
from merec.runtime import available_threads, collected_logs, emit_logs, ordered_map
from merec.shards import Shard, output_folder, write_shard

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
    align: str
    mirror_yaw_deg: float


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


def choose_face(faces: list[Face], sample: str, where: str = "the onset frame", similar: str = "fail") -> Face:
    """The participant's face: the largest detection, unless a second one is of similar size
    (``similar``: ``fail``, an error; ``largest``, the largest anyway, with a warning)."""
    if not faces:
        raise MerecError(
            f"sample {sample}: no face found on {where}; check the frames, or raise "
            "face.upsample for small faces, or set face.on_error: skip"
        )
    ranked = sorted(faces, key=lambda face: (-box_area(face), -face.score))
    chosen = ranked[0]
    if len(ranked) > 1:
        boxes = ", ".join(f"{face.box} ({box_area(face)} px)" for face in ranked)
        if similar == "fail" and box_area(ranked[1]) >= AMBIGUOUS_AREA * box_area(chosen):
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
    frames: list[np.ndarray],
    apex_index: int,
    sample: str,
    params: FaceParams,
    where: str = "the onset frame",
    max_side: int | None = None,
    similar: str = "fail",
) -> dict[str, np.ndarray]:
    """Detect on frame 0 (the onset) and crop every frame with the same warp.

    ``align: similarity`` puts the eye centres in place (:func:`alignment_transform`);
    ``frontalize`` first undoes the head pose (:mod:`merec.frontalize`). Either way the head pose
    estimated on the onset is kept (``pose``: yaw, pitch, roll in degrees). ``max_side`` and
    ``similar``: see :func:`merec.landmarks.detect_faces` and :func:`choose_face`.
    """
    faces = detect_faces(frames[0], upsample=params.upsample, min_score=params.min_score, max_side=max_side)
    face = choose_face(faces, sample, where, similar)
    pose = estimate_pose(face.landmarks)
    size = (params.size, params.size)
    if params.align == "frontalize":
        try:
            frontal = frontal_landmarks(face.landmarks, pose)
        except MerecError as exc:
            raise MerecError(f"sample {sample}: on {where}, {exc}") from exc
        transform = alignment_transform(frontal, params)
        map_x, map_y = frontal_maps(face.landmarks, frontal, transform, params.size)
        weights = mirror_weights(pose, params.size, params.mirror_yaw_deg)
        crops = np.stack([remap_frontal(frame, map_x, map_y, weights) for frame in frames])
        landmarks = apply_transform(transform, frontal)
    else:
        transform = alignment_transform(face.landmarks, params)
        crops = np.stack(
            [
                cv2.warpAffine(f, transform, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                for f in frames
            ]
        )
        landmarks = apply_transform(transform, face.landmarks)
    return {
        "frames": crops,
        "landmarks": landmarks.astype(np.float32),
        "transform": transform.astype(np.float32),
        "pose": pose.angles(),
        "apex_index": np.int64(apex_index),
    }


def _read_clip(clip: Clip) -> tuple[list[np.ndarray], np.ndarray]:
    sample = clip.sample
    frames = []
    for path in clip.frames:
        try:
            frames.append(read_image(path))
        except MerecError as exc:
            raise MerecError(f"sample {sample}: {exc}") from exc
    check_frame_sizes(frames, list(clip.frames), sample)
    numbers = np.arange(int(clip.row["onset"]), int(clip.row["offset"]) + 1)
    if len(numbers) != len(frames):
        raise MerecError(
            f"sample {sample}: the clip list holds {len(frames)} frames for onset..offset {numbers[0]}..{numbers[-1]}; "
            "rerun the ingest stage"
        )
    return frames, numbers


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


def run(clips: PathLike, output: PathLike, params: FaceParams) -> Shard:
    """Align every clip of a shard's clip list into ``output`` (a shard manifest, see :mod:`merec.shards`).

    Clips that cannot be aligned are an error naming the sample and the file, or, with
    ``on_error: skip``, listed with the reason in the manifest.
    """
    listed = read_clip_list(clips)
    _check_sample_ids(listed)
    skipped: dict[str, str] = {}
    written: list[str] = []
    workers = available_threads()
    with atomic_dir(output_folder(output)) as tmp:
        jobs = [(clip, Path(tmp), params) for clip in listed.clips]
        results = ordered_map(_align_sample, jobs, workers, "face")
        with closing(results):  # on an error, stop the workers before the temporary folder goes
            for clip, (failure, records) in zip(listed.clips, results, strict=True):
                emit_logs(records)  # warnings of the worker, in sample order
                if failure is None:
                    written.append(clip.sample)
                    continue
                if params.on_error == "fail":
                    raise MerecError(failure)
                LOG.warning("skipping %s", failure)
                skipped[clip.sample] = failure
    shard = write_shard(output, "face", listed.shard, listed.shards, written, skipped)
    LOG.info(
        "shard %d: aligned %d of %d clips (%d skipped)", listed.shard, len(written), len(listed.clips), len(skipped)
    )
    return shard


def _align_sample(job: tuple[Clip, Path, FaceParams]) -> tuple[str | None, list[logging.LogRecord]]:
    """Align one clip into ``folder``: the error message when it cannot be, and the log records."""
    clip, folder, params = job
    with collected_logs() as records:
        try:
            frames, numbers = _read_clip(clip)
            where = f"the onset frame {clip.frames[0]}"
            apex_index = int(clip.row["apex"]) - int(clip.row["onset"])
            aligned = align_clip(frames, apex_index, clip.sample, params, where)
        except MerecError as exc:
            return str(exc), records
        save_npz(folder / f"{clip.sample}.npz", frame_numbers=numbers, **aligned)
    return None, records


def _check_sample_ids(listed: ClipList) -> None:
    """Sample ids name output files: they must be plain names (ingest makes them so)."""
    for clip in listed.clips:
        if not is_safe_id(clip.sample):
            raise MerecError(
                f"{listed.path}: sample id {clip.sample!r} is not a plain name (letters, digits, '_', '.', '-'); "
                "clip lists are written by the ingest stage: rerun it instead of editing the file"
            )
