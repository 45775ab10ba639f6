"""The frames of a user's recording: a video file (OpenCV's FFmpeg backend) or a folder of frames.

A :class:`Source` is read front to back, one frame at a time, as often as needed (the spotting
pass, then the pass that picks the spotted intervals' frames), so memory never holds the video.
Frames are numbered from 1 in reading order (a folder: the numbers in its file names).

**Frame rate.** A video's is the container's (``CAP_PROP_FPS``), a folder has none: ``fps``
overrides either and is needed for a folder. **Time.** Each frame's time comes from the
decoder's timestamp (``CAP_PROP_POS_MSEC``), so a variable-frame-rate recording still reports
the right seconds (``fps`` given: the times come from it instead); the flow steps of spotting use
the mean rate, and a rate that varies by more than :data:`VFR_TOLERANCE` of a frame is reported.
Frames that cannot be decoded are skipped and named (the flows through them are left out), never
silently dropped.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from merec.datasets.frames import IMAGE_SUFFIXES, list_frames
from merec.errors import MerecError
from merec.io import read_image
from merec.spotting.features import read_frames

LOG = logging.getLogger("merec.predict")
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})
VFR_TOLERANCE = 0.25  # frame intervals this far (in frames) from the mean make a recording variable-rate


@dataclass
class Source:
    """A recording's frames and timing (module docstring)."""

    path: Path
    fps: float
    frame_count: int | None  # the container's count (approximate for some codecs); a folder's exact count
    size: tuple[int, int]  # width, height
    is_video: bool
    first: int = 1  # the first frame's number
    fps_given: bool = False  # --fps: times come from it, not from the file's timestamps
    times: array = field(default_factory=lambda: array("d"))  # seconds of frames 1, 2, ... (a video read through)

    @property
    def name(self) -> str:
        """The recording's name (the file or folder name without suffix)."""
        return self.path.stem if self.is_video else self.path.name

    def frames(self) -> Iterator[tuple[int, np.ndarray | None]]:
        """(frame number, RGB uint8 frame or None when it cannot be read), front to back."""
        yield from (self._video_frames() if self.is_video else self._folder_frames())

    def seconds(self, number: int) -> float:
        """The time of a frame: its decoder timestamp when the video was read (and no ``--fps`` was
        given), else from the frame rate."""
        if 1 <= number <= len(self.times):
            return self.times[number - 1]
        return (number - self.first) / self.fps

    def _video_frames(self) -> Iterator[tuple[int, np.ndarray | None]]:
        capture = _open_video(self.path)
        number = 0
        stamps = array("d")
        try:
            while True:
                ok = capture.grab()
                if not ok:
                    break
                number += 1
                if not self.fps_given:
                    stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    LOG.warning("%s: frame %d cannot be decoded; skipped", self.path, number)
                    yield number, None
                    continue
                yield number, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
        self.times = stamps  # a full read's: a pass that stopped early keeps the last full one
        if self.frame_count and number < self.frame_count - 1:
            LOG.warning("%s: decoding stopped at frame %d of the %d the file declares (damaged or cut short)",
                        self.path, number, self.frame_count)  # fmt: skip
        self.frame_count = number

    def _folder_frames(self) -> Iterator[tuple[int, np.ndarray | None]]:
        files = list_frames(self.path)
        yield from read_frames(self.name, files, min(files), max(files))

    def check_timing(self) -> bool:
        """After a full read: whether the frame rate varies (logged, with the rates found)."""
        if len(self.times) < 3:
            return False
        stamps = np.asarray(self.times)
        steps = np.diff(stamps) * self.fps
        if not len(steps) or np.all(np.abs(steps - 1.0) <= VFR_TOLERANCE):
            return False
        intervals = np.diff(stamps)
        mean_rate = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)
        LOG.warning("%s: variable frame rate (frame intervals %.3g-%.3g s, mean rate %.3g fps): times come from the "
                    "timestamps, spotting's flow steps from %.3g fps", self.path, intervals.min(), intervals.max(),
                    mean_rate, self.fps)  # fmt: skip
        return True


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise MerecError(
            f"{path}: OpenCV's FFmpeg backend cannot open this file as a video (damaged, or a codec it lacks); "
            "convert it to H.264 mp4 or to a folder of frames"
        )
    return capture


def open_source(path: str | Path, fps: float | None = None) -> Source:
    """The recording at ``path`` (a video file or a folder of frames); ``fps`` overrides its rate."""
    path = Path(path)
    if fps is not None and fps <= 0:
        raise MerecError(f"--fps must be positive, got {fps}")
    if not path.exists():
        raise MerecError(f"{path}: no such video file or frame folder")
    if path.is_dir():
        files = list_frames(path)
        if not files:
            raise MerecError(f"{path}: no frames in this folder ({', '.join(sorted(IMAGE_SUFFIXES))} files)")
        if fps is None:
            raise MerecError(f"{path}: a folder of frames has no frame rate; give it with --fps")
        first = read_image(next(iter(files.values())))
        size = (first.shape[1], first.shape[0])
        return Source(path, float(fps), max(files) - min(files) + 1, size, False, first=min(files), fps_given=True)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise MerecError(f"{path}: a single image; give a video file or a folder of frames")
    capture = _open_video(path)
    try:
        ok, frame = capture.read()
        rate = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if not ok or frame is None:
        raise MerecError(f"{path}: no frame can be decoded from this video; check the file")
    given = fps is not None
    if fps is None:
        if not rate or not np.isfinite(rate) or rate <= 0:
            raise MerecError(f"{path}: the file gives no frame rate; give it with --fps")
        fps = rate
    size = (frame.shape[1], frame.shape[0])
    return Source(path, float(fps), count if count > 0 else None, size, True, fps_given=given)
