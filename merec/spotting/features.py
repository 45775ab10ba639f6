"""Per-frame motion features of long videos, streamed: memory does not grow with a video's length.

For each video (a row of ingest's ``videos.csv``) the frames are read in order, ``chunk_frames``
at a time:

* **Face tracking.** dlib finds the face (the largest; :func:`merec.face.choose_face`) and its 68
  landmarks on the first frame of a *segment*; the segment's similarity warp (eye centres in place,
  :func:`merec.face.alignment_transform`) crops every frame of it to ``face_size`` px, so motion
  within a segment is preserved. Every ``redetect_every`` frames the landmarks are found again: a
  face lost, or eyes moved by more than ``drift`` inter-ocular distances, ends the segment; the next
  one starts where a face is found again. A crop that differs from the one before by more than
  ``recheck_change`` grey levels on average (a cut, a hand over the face, the face leaving) has its
  face checked at once rather than at the next scheduled check. Frames without a face are *gaps*: reported, and never
  scored as motion.
* **Flow.** Optical flow from frame ``i`` to ``i + k`` (DIS by default; ``flow``), both in one
  segment, for two steps: ``k`` is half a typical micro-expression (``micro_length_s`` x fps / 2)
  and ``K`` half a typical macro-expression (``macro_length_s``), at least 1 frame each; both are
  fixed from the frame rate, never from the annotations (they include the held-out subjects').
* **Head motion and blinks.** The median flow of the nose region is subtracted (global head motion),
  and the eyes (the lid landmarks' hull, grown by ``eye_margin`` px) are zeroed, so blinks do not
  count.
* **Outputs per frame ``i``**, for each type (``micro`` with step ``k``, ``macro`` with ``K``):
  ``rois_<type>`` (N, R): the mean flow magnitude in each region of ``rois`` (boxes of
  ``roi_size`` px around the landmarks' mean); ``valid_<type>`` (N,): whether frame ``i`` has that
  flow; the maps ``<video>.<type>.npy`` (N, 3, m, m) float16: u, v and optical strain of the
  whole crop area-averaged to ``map_size`` (the learned spotter's input). Besides: ``face`` (N,),
  whether a face was tracked on the frame, and ``segment`` (N,), the index of the frame that
  started its segment (-1: no face).

A missing or unreadable frame is skipped and reported (the flows that need it are invalid);
a video shorter than ``k + 1`` frames, or with no face at all, is an error naming the video.
Each video's arrays go to ``<video>.npz`` in the shard's folder (:mod:`merec.shards`; the archive
holds the maps' SHA-256, so the manifest changes when they do). The maps are written to disk as
the video runs, ``chunk_frames`` frames at a time, so what stays in memory per frame is a few
numbers: peak memory does not grow with the video's length beyond them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from merec.config import Params
from merec.datasets.clips import Clip, read_clip_list
from merec.datasets.frames import frame_number_of
from merec.errors import MerecError
from merec.face import FaceParams, alignment_transform, apply_transform, choose_face
from merec.features import make_flow, optical_strain, roi_boxes
from merec.io import PathLike, atomic_dir, read_image, save_npz
from merec.landmarks import GROUPS, Face, detect_faces, eye_centres, interocular_distance
from merec.runtime import available_threads, collected_logs, emit_logs, ordered_map
from merec.shards import Shard, file_digest, output_folder, write_shard

LOG = logging.getLogger("merec.spotting")
NOSE = list(range(27, 36))


@dataclass(frozen=True)
class SpotFeatureParams(Params):
    """The ``spot_features`` section of params.yaml (defaults and constraints: the params schema)."""

    section = "spot_features"
    face_size: int
    upsample: int
    flow: str
    micro_length_s: float
    macro_length_s: float
    chunk_frames: int
    redetect_every: int
    drift: float
    recheck_change: float
    eye_margin: int
    roi_size: int
    map_size: int
    rois: Mapping[str, list[int]]


def flow_steps(fps: float, params: SpotFeatureParams) -> dict[str, int]:
    """Frames between the two frames of a flow, per type: half a typical expression of it (at least 1)."""
    lengths = {"micro": params.micro_length_s, "macro": params.macro_length_s}
    return {kind: max(1, round(length * fps / 2)) for kind, length in lengths.items()}


def _face_params(params: SpotFeatureParams) -> FaceParams:
    return FaceParams.from_mapping({"size": params.face_size, "upsample": params.upsample})


@dataclass
class Segment:
    """A run of frames cropped with one warp."""

    start: int  # frame index (0-based, in the video's frame order)
    transform: np.ndarray  # 2x3, frame -> crop
    eyes: np.ndarray  # (2, 2) eye centres on the frame that started it
    iod: float
    landmarks: np.ndarray  # (68, 2) in crop coordinates
    masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # eye mask, nose box, ROI boxes (:func:`_masks`)


def _masks(landmarks: np.ndarray, params: SpotFeatureParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eye mask (zeroed), nose box and ROI boxes of a crop with these landmarks."""
    size = params.face_size
    eyes = np.zeros((size, size), np.uint8)
    for group in ("right_eye", "left_eye"):
        hull = cv2.convexHull(np.rint(landmarks[GROUPS[group]]).astype(np.int32))
        cv2.fillConvexPoly(eyes, hull, 1)
    if params.eye_margin > 0:
        kernel = np.ones((2 * params.eye_margin + 1, 2 * params.eye_margin + 1), np.uint8)
        eyes = cv2.dilate(eyes, kernel)
    (nose,) = roi_boxes(landmarks, {"nose": NOSE}, params.roi_size, size)
    return eyes.astype(bool), nose, roi_boxes(landmarks, params.rois, params.roi_size, size)


def read_frames(
    video: str, files: Mapping[int, Path], first: int, last: int
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(frame number, RGB frame or None when missing or unreadable) from ``first`` to ``last``."""
    folder = next(iter(files.values())).parent if files else "the video's folder"
    for number in range(first, last + 1):
        path = files.get(number)
        if path is None:
            LOG.warning("video %s: frame %d is missing from %s; skipped (flows through it are left out)",
                        video, number, folder)  # fmt: skip
            yield number, None
            continue
        try:
            yield number, read_image(path)
        except MerecError as exc:
            LOG.warning("video %s: frame %d (%s) cannot be read (%s); skipped", video, number, path.name, exc)
            yield number, None


@dataclass(frozen=True)
class Tracking:
    """How faces are found on a video's frames (the spot_features stage uses the defaults).

    ``max_side``: detect on frames downscaled to this many px on the longer side (None: full size);
    ``similar``: two faces of similar size, ``fail`` (an error) or ``largest`` (a warning; once a
    face is tracked, the detection nearest to it is kept).
    """

    max_side: int | None = None
    similar: str = "fail"


class _Tracker:
    """Face segments: a warp per stable stretch, re-detected on drift or loss."""

    def __init__(self, video: str, params: SpotFeatureParams, tracking: Tracking):
        self.video = video
        self.params = params
        self.tracking = tracking
        self.face = _face_params(params)
        self.segment: Segment | None = None
        self.since = 0

    def _detect(self, frame: np.ndarray, number: int) -> Face | None:
        faces = detect_faces(frame, upsample=self.params.upsample, max_side=self.tracking.max_side)
        if not faces:
            return None
        if self.segment is not None and len(faces) > 1 and self.tracking.similar == "largest":
            tracked = self.segment.eyes  # keep following the face tracked so far
            return min(faces, key=lambda face: np.abs(np.array(eye_centres(face.landmarks)) - tracked).max())
        return choose_face(faces, self.video, f"frame {number}", self.tracking.similar)

    def _start(self, face: Face, index: int) -> Segment:
        transform = alignment_transform(face.landmarks, self.face)
        segment = Segment(index, transform, np.array(eye_centres(face.landmarks)), interocular_distance(face.landmarks),
                          apply_transform(transform, face.landmarks))  # fmt: skip
        self.segment = segment
        self.since = 0
        return segment

    def update(self, frame: np.ndarray, index: int, number: int, now: bool = False) -> Segment | None:
        """The segment frame ``index`` (0-based; ``number`` in the video's numbering) belongs to (a new
        one on drift or after a gap), or None: no face; ``now``: check the face whatever the schedule."""
        due = now or self.segment is None or self.since >= self.params.redetect_every
        self.since += 1
        if not due:
            return self.segment
        face = self._detect(frame, number)
        if face is None:
            if self.segment is not None:
                LOG.warning("video %s: face lost at frame %d", self.video, number)
            self.segment = None
            return None
        if self.segment is not None:
            moved = np.abs(np.array(eye_centres(face.landmarks)) - self.segment.eyes).max() / self.segment.iod
            if moved <= self.params.drift:
                self.since = 0
                return self.segment
        return self._start(face, index)


def video_features(
    video: str,
    frames: Iterable[tuple[int, np.ndarray | None]],
    fps: float,
    params: SpotFeatureParams,
    out: Path | None = None,
    n: int | None = None,
    tracking: Tracking = Tracking(),
) -> dict[str, np.ndarray]:
    """The per-frame features of one video (module docstring) from its ``(frame number, RGB frame or
    None)`` in order; with ``out`` the maps go to ``<out>.<type>.npy``, or, when the number of frames
    ``n`` is not known up front (a streamed recording), to headerless ``<out>.<type>.raw`` files
    (:func:`raw_maps` reads them)."""
    steps = flow_steps(fps, params)
    window_frames = max(steps.values()) + 1
    if n is not None and n < window_frames:
        _too_short(video, n, window_frames, fps)
    flow = make_flow(params.flow)
    names = list(params.rois)
    m = params.map_size
    rois = {kind: _Column(np.float32, len(names)) for kind in steps}
    valid = {kind: _Column(bool) for kind in steps}
    face, segment_of, numbers = _Column(bool), _Column(np.int64, fill=-1), _Column(np.int64)
    maps = {}
    if out is not None:
        maps = {kind: _MapWriter(maps_file(out, kind, raw=n is None), n, m, params.chunk_frames) for kind in steps}
    tracker = _Tracker(video, params, tracking)
    longest = max(steps.values())
    window: deque[tuple[int, np.ndarray, Segment]] = deque()  # (index, grey crop, segment) of the last frames
    size = (params.face_size, params.face_size)
    index = -1
    try:
        for index, (number, frame) in enumerate(frames):
            for column in (numbers, face, segment_of, *rois.values(), *valid.values()):
                column.grow()
            numbers[index] = number
            segment = None if frame is None else tracker.update(frame, index, int(number))
            while window and window[0][0] < index - longest:
                window.popleft()
            if segment is None:
                continue
            grey = _grey_crop(frame, segment, size)
            previous = window[-1] if window else None
            follows = previous is not None and previous[0] == index - 1 and previous[2] is segment
            if follows and tracker.since > 0 and float(np.mean(cv2.absdiff(grey, previous[1]))) > params.recheck_change:
                segment = tracker.update(frame, index, int(number), now=True)  # a cut or an occlusion
                if segment is None:
                    continue
                grey = _grey_crop(frame, segment, size)
            face[index], segment_of[index] = True, segment.start
            if segment.masks is None:
                segment.masks = _masks(segment.landmarks, params)
            earlier = {i: (g, seg) for i, g, seg in window}
            for kind, step in steps.items():
                before = earlier.get(index - step)
                if before is None or before[1] is not segment:
                    continue  # a gap or another segment between the two frames: no flow
                at = index - step
                rois[kind][at], motion_map = _motion(flow(before[0], grey), segment.masks, m)
                if maps:
                    maps[kind].put(at, motion_map)
                valid[kind][at] = True
            window.append((index, grey, segment))
    finally:
        for writer in maps.values():
            writer.close(index + 1)
    total = index + 1
    if total < window_frames:
        _too_short(video, total, window_frames, fps)
    if n is not None and total != n:
        raise MerecError(f"video {video}: {total} frames read, {n} expected; rerun ingest-lv")
    if not face.values().any():
        raise MerecError(f"video {video}: no face found on any of its {total} frames; check the frames, or raise "
                         "spot_features.upsample for small faces")  # fmt: skip
    arrays = {
        "face": face.values(),
        "segment": segment_of.values(),
        "frame_numbers": numbers.values(),
        "fps": np.float64(fps),
        "roi_names": np.array(names),
    }
    for kind, step in steps.items():
        arrays |= {
            f"rois_{kind}": rois[kind].values(),
            f"valid_{kind}": valid[kind].values(),
            f"k_{kind}": np.int64(step),
        }
    return arrays


class _Column:
    """A per-frame column (numpy, grown in chunks): a few bytes a frame, whatever the video's length."""

    def __init__(self, dtype: type, width: int | None = None, fill: float = 0, chunk: int = 4096):
        self.shape = () if width is None else (width,)
        self.data = np.full((chunk, *self.shape), fill, dtype)
        self.fill = fill
        self.size = 0

    def grow(self) -> None:
        """One more frame, holding ``fill``."""
        if self.size == len(self.data):
            more = np.full_like(self.data, self.fill)
            self.data = np.concatenate([self.data, more])
        self.size += 1

    def __setitem__(self, index: int, value: object) -> None:
        self.data[index] = value

    def values(self) -> np.ndarray:
        """The column's frames so far (a copy)."""
        return self.data[: self.size].copy()


def _grey_crop(frame: np.ndarray, segment: Segment, size: tuple[int, int]) -> np.ndarray:
    crop = cv2.warpAffine(frame, segment.transform, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def _too_short(video: str, n: int, window: int, fps: float) -> None:
    raise MerecError(
        f"video {video}: {n} frames, shorter than the flow window ({window} frames at {fps:g} fps); "
        "leave it out of the dataset or lower spot_features.macro_length_s"
    )


class _MapWriter:
    """Writes (N, 3, m, m) float16 maps front to back, ``chunk`` frames at a time (frames never given
    are zeros), so memory holds one chunk whatever N is: an ``.npy`` when N is known up front, else
    the bare array data (N is then the count given to :meth:`close`)."""

    def __init__(self, path: Path, frames: int | None, size: int, chunk: int):
        self.handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.frames = frames
        if frames is not None:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False,
                      "shape": (frames, 3, size, size)}  # fmt: skip
            np.lib.format.write_array_header_2_0(self.handle, header)
        self.buffer: list[np.ndarray] = []
        self.written = 0
        self.chunk = chunk
        self.zero = np.zeros((3, size, size), np.float16)

    def put(self, index: int, value: np.ndarray) -> None:
        """The map of frame ``index`` (indices in increasing order)."""
        while self.written + len(self.buffer) < index:
            self.buffer.append(self.zero)
        self.buffer.append(value.astype(np.float16))
        if len(self.buffer) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            self.handle.write(np.ascontiguousarray(np.stack(self.buffer)).tobytes())
            self.written += len(self.buffer)
            self.buffer = []

    def close(self, frames: int) -> None:
        """Pad with zero maps to ``frames`` (the video's length) and close the file."""
        if self.frames is not None and frames != self.frames:
            frames = self.frames  # the header's count; a shorter read is the caller's error to report
        self._flush()
        while self.written < frames:
            self.buffer.append(self.zero)
            if len(self.buffer) >= self.chunk:
                self._flush()
        self._flush()
        self.handle.close()


def _motion(
    field: np.ndarray, masks: tuple[np.ndarray, np.ndarray, np.ndarray], map_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """ROI magnitudes (R,) and the (3, m, m) u, v, strain map of one flow, head motion removed, eyes masked."""
    eyes, nose, boxes = masks
    x0, y0, x1, y1 = nose
    field = field - np.median(field[y0:y1, x0:x1].reshape(-1, 2), axis=0)
    field[eyes] = 0.0
    # the ROI's mean flow vector: coherent skin motion adds up, flow noise averages out
    rois = np.array([np.hypot(*field[b[1] : b[3], b[0] : b[2]].reshape(-1, 2).mean(axis=0)) for b in boxes], np.float32)
    stacked = np.dstack([field, optical_strain(field)]).astype(np.float32)
    return rois, cv2.resize(stacked, (map_size, map_size), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)


def maps_file(archive: PathLike, kind: str, raw: bool = False) -> Path:
    """The memory-mappable ``.npy`` (``raw``: headerless) of a video's per-frame flow maps of one type,
    beside its archive."""
    return Path(archive).with_suffix(f".{kind}.{'raw' if raw else 'npy'}")


def raw_maps(archive: PathLike, kind: str, frames: int, size: int) -> np.ndarray:
    """The (frames, 3, size, size) maps :func:`video_features` wrote without a header, memory-mapped."""
    return np.memmap(maps_file(archive, kind, raw=True), np.float16, "r", shape=(frames, 3, size, size))


def load_maps(archive: PathLike, kind: str) -> np.ndarray:
    """The per-frame flow maps (N, 3, m, m) of one type of the video whose features are in ``archive``."""
    return np.load(maps_file(archive, kind), mmap_mode="r")


def gaps(face: np.ndarray, frame_numbers: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) frame numbers of each run of frames without a tracked face."""
    out, start = [], None
    for present, number in zip(face, frame_numbers, strict=True):
        if not present and start is None:
            start = int(number)
        elif present and start is not None:
            out.append((start, int(number) - 1))
            start = None
    if start is not None:
        out.append((start, int(frame_numbers[-1])))
    return out


_JOB: dict[str, object] = {}


def _video_job(job: tuple[Clip, float, Path]) -> tuple[str, str, list[logging.LogRecord], str | None]:
    """One video's features into ``folder``: (video, its face gaps, the log records, the error if any)."""
    clip, fps, folder = job
    params: SpotFeatureParams = _JOB["params"]  # type: ignore[assignment]
    files = {frame_number_of(path.stem): path for path in clip.frames}
    archive = folder / f"{clip.sample}.npz"
    with collected_logs() as records:
        try:
            first, last = int(clip.row["onset"]), int(clip.row["offset"])
            frames = read_frames(clip.sample, files, first, last)
            arrays = video_features(clip.sample, frames, fps, params, archive, n=last - first + 1)
        except MerecError as exc:
            return clip.sample, "", records, str(exc)
        for kind in ("micro", "macro"):  # the manifest's hash of the archive then covers the maps too
            arrays[f"maps_{kind}_sha256"] = np.array(file_digest(maps_file(archive, kind)))
        save_npz(archive, **arrays)
        missing = gaps(arrays["face"], arrays["frame_numbers"])
        report = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in missing)
        if missing:
            LOG.warning("video %s: no face on frame(s) %s (gaps: never scored)", clip.sample, report)
    return clip.sample, report, records, None


def run(video_list: PathLike, videos_csv: PathLike, output: PathLike, params: SpotFeatureParams) -> Shard:
    """Features of every video of a shard's video list (ingest-lv's ``videos/shard-<k>.json``; frame
    rates from ``videos_csv``); the shard's manifest ``output`` is written last, the archives go to
    the folder beside it."""
    listed = read_clip_list(video_list)
    rates = dict(zip(*(pd.read_csv(videos_csv, dtype={"video": str})[c] for c in ("video", "fps")), strict=True))
    unknown = [clip.sample for clip in listed.clips if clip.sample not in rates]
    if unknown:
        raise MerecError(f"{video_list}: video(s) {', '.join(unknown[:5])} are not in {videos_csv}; rerun ingest-lv")
    folder = output_folder(output)
    with atomic_dir(folder) as tmp:
        jobs = [(clip, float(rates[clip.sample]), tmp) for clip in listed.clips]
        _JOB["params"] = params
        reports = {}
        for video, report, records, error in ordered_map(_video_job, jobs, available_threads(),
                                                         f"spot features shard {listed.shard}"):  # fmt: skip
            emit_logs(records)
            if error:
                raise MerecError(error)
            reports[video] = report
    with_gaps = sum(1 for report in reports.values() if report)
    LOG.info("shard %d: features of %d videos (%d with face gaps)", listed.shard, len(reports), with_gaps)
    return write_shard(output, "spot_features", listed.shard, listed.shards, list(reports), {})
