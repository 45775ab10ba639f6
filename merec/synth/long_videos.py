"""The embedded long-video dataset for spotting: minutes of a face with expressions and distractors,
in the SAMM Long Videos format.

Each subject (the same identities, placement and AU morphology as the short-clip generator,
:mod:`merec.synth.clips`) records ``videos_per_subject`` videos of ``duration_s`` seconds at
``fps``. Along a video:

* **micro-expressions** (``micro_per_video``; onset to offset ``micro_duration_s``, peak
  displacement ``micro_amplitude_px``) and **macro-expressions** (``macro_per_video``; longer,
  ``macro_duration_s``, larger, ``macro_amplitude_px``), each one expression of the short-clip
  classes made of action units (:func:`merec.synth.clips.choose_expression`), at random times and
  never overlapping each other;
* **distractors**: blinks (about every ``blink_interval_s``), talking-like mouth movement (bursts
  of 3-5 Hz lip opening, ``talk_per_minute``, away from the expressions), a smooth head drift
  (translation, in-plane and out-of-plane rotation) and a slow illumination drift, plus per-frame
  flicker, sensor noise and JPEG compression.

Every amplitude is measured at a 128-px aligned crop, as in the short-clip generator. Human
coders' disagreement is modelled by shifting the annotated onset, apex and offset by up to
``annotation_jitter`` frames. Output (``root``, replaced atomically):

* ``SAMM_longvideos/<sss>_<v>/<sss>_<v>_<nnnn>.jpg``: frames numbered from 1;
* ``SAMM_LongVideos_V3_Release.xlsx``: sheet ``FACS_Movement_Only``, header on Excel row 10
  (Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units, Notes),
  Type ``Micro - 1/2`` or ``Macro``, as the release spells them;
* ``SAMM_Micro_FACS_Codes_v2.xlsx``: the micro rows' emotions in the short-clip release's layout,
  where the SAMM-LV reader looks for them (SAMM-LV itself has no emotion column);
* ``synth.json``: the parameters (among them the frame rate, which the reader takes from it),
  subjects and every event with its true timing.

Everything is deterministic from ``seed``; each video has its own random stream.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from merec.config import Params
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, write_image, write_json
from merec.runtime import available_threads, ordered_map
from merec.synth.clips import (
    BLINK,
    HEADER_ROW,
    SAMM_COLUMNS,
    Subject,
    au_string,
    choose_expression,
    expression_field,
    make_subjects,
    samm_row,
    write_sheet,
)
from merec.synth.motion import AU_FIELDS, REFERENCE_IOD, canonical_components, divergence, parallax, profile

LOG = logging.getLogger("merec.synth")

LONG_VIDEO_ANNOTATION = "SAMM_LongVideos_V3_Release.xlsx"
EMOTION_ANNOTATION = "SAMM_Micro_FACS_Codes_v2.xlsx"
FRAMES_FOLDER = "SAMM_longvideos"
MANIFEST = "synth.json"
LV_COLUMNS = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
              "Action Units", "Notes"]  # fmt: skip
LV_HEADER_ROW = 10
TYPE_NAMES = {"micro": "Micro - 1/2", "macro": "Macro"}
TALK = canonical_components([AU_FIELDS[25][0], AU_FIELDS[25][1], ([7, 8, 9], (0.0, 1.0), 0.35)])
EDGE_S = 1.0  # no expression within this many seconds of a video's ends
GAP_S = 0.8  # nor within this many seconds of another expression


@dataclass(frozen=True)
class LongVideoParams(Params):
    """The ``synth_lv`` section of params.yaml (defaults and constraints: the params schema)."""

    section = "synth_lv"
    seed: int
    photos: tuple[str, ...]
    subjects: int
    videos_per_subject: int
    duration_s: tuple[float, float]
    fps: float
    frame_size: int
    micro_per_video: tuple[int, int]
    macro_per_video: tuple[int, int]
    micro_duration_s: tuple[float, float]
    macro_duration_s: tuple[float, float]
    micro_amplitude_px: float
    macro_amplitude_px: float
    blink_interval_s: float
    blink_px: float
    talk_per_minute: float
    talk_amplitude_px: float
    head_motion_px: float
    head_rotation_deg: float
    illumination_drift: float
    flicker: float
    noise_std: float
    annotation_jitter: int
    jpeg_quality: int
    morph: float
    au_variation: float
    shading: float


@dataclass
class Event:
    """One expression of a long video: true frames (0-based) and the annotated ones (1-based numbers)."""

    kind: str  # micro | macro
    filename: str  # <sss>_<v>_<n>, as SAMM-LV names a row
    emotion: str
    label: str
    aus: dict[str, float]
    onset: int
    apex: int
    offset: int
    annotated: tuple[int, int, int] = (0, 0, 0)


@dataclass
class VideoSpec:
    """Ground truth and distractors of one generated video."""

    subject: int
    name: str  # <sss>_<v>
    index: int
    frames: int
    events: list[Event] = field(default_factory=list)
    blinks: list[int] = field(default_factory=list)  # centre frames
    talks: list[tuple[int, int, float]] = field(default_factory=list)  # first, last frame, Hz


def _place(lengths: list[int], frames: int, edge: int, gap: int, rng: np.random.Generator) -> list[int] | None:
    """Random starts for intervals of ``lengths`` (in this order along the video), ``gap`` apart, or None."""
    free = frames - 2 * edge - sum(lengths) - gap * (len(lengths) - 1)
    if free < 0:
        return None
    cuts = np.sort(rng.uniform(0, free, len(lengths)))  # the slack before each interval
    starts, position = [], edge
    for index, length in enumerate(lengths):
        slack = cuts[index] - (cuts[index - 1] if index else 0.0)
        position += int(slack)
        starts.append(position)
        position += length + gap
    return starts


def _timing(duration: tuple[float, float], fps: float, rng: np.random.Generator) -> tuple[int, int]:
    """Length (frames, onset to offset inclusive) and apex offset of one expression."""
    length = max(3, round(rng.uniform(*duration) * fps))
    apex = int(np.clip(round(length * rng.uniform(0.35, 0.6)), 1, length - 2))
    return length, apex


def plan_video(subject: int, index: int, params: LongVideoParams, rng: np.random.Generator) -> VideoSpec:
    """Decide a video's length, expressions, blinks and talking bursts."""
    fps = params.fps
    frames = round(rng.uniform(*params.duration_s) * fps)
    spec = VideoSpec(subject, f"{subject:03d}_{index}", index, frames)
    kinds = ["micro"] * int(rng.integers(params.micro_per_video[0], params.micro_per_video[1] + 1))
    kinds += ["macro"] * int(rng.integers(params.macro_per_video[0], params.macro_per_video[1] + 1))
    rng.shuffle(kinds)
    timings = [_timing(params.micro_duration_s if k == "micro" else params.macro_duration_s, fps, rng) for k in kinds]
    starts = _place([t[0] for t in timings], frames, int(EDGE_S * fps), int(GAP_S * fps), rng)
    if starts is None:
        raise MerecError(
            f"synth_lv: {len(kinds)} expressions do not fit in a {frames}-frame video; lengthen synth_lv.duration_s "
            "or lower micro_per_video / macro_per_video"
        )
    labels = ["negative", "positive", "surprise"]
    busy = []
    for number, (kind, (length, apex), start) in enumerate(zip(kinds, timings, starts, strict=True), start=1):
        emotion, aus = choose_expression(str(rng.choice(labels)), rng)
        label = {"Happiness": "positive", "Surprise": "surprise"}.get(emotion, "negative")
        event = Event(kind, f"{spec.name}_{number}", emotion, label, aus, start, start + apex, start + length - 1)
        jitter = rng.integers(-params.annotation_jitter, params.annotation_jitter + 1, 3)
        onset, peak, offset = event.onset + int(jitter[0]), event.apex + int(jitter[1]), event.offset + int(jitter[2])
        peak = int(np.clip(peak, onset + 1, offset - 1))
        event.annotated = (onset + 1, peak + 1, offset + 1)  # frame numbers start at 1
        spec.events.append(event)
        busy.append((start - int(0.5 * fps), start + length + int(0.5 * fps)))
    blink = max(params.blink_interval_s * fps, 1.0)
    t = float(rng.exponential(blink))
    while params.blink_px > 0 and t < frames - 3:
        spec.blinks.append(int(t))
        t += max(float(rng.exponential(blink)), 0.3 * fps)
    bursts = int(rng.poisson(params.talk_per_minute * frames / fps / 60.0)) if params.talk_amplitude_px > 0 else 0
    for _ in range(bursts):
        for _attempt in range(20):  # talking happens away from the expressions
            length = int(rng.uniform(1.0, 3.0) * fps)
            first = int(rng.integers(0, max(frames - length, 1)))
            if all(first + length < low or first > high for low, high in busy):
                spec.talks.append((first, first + length - 1, float(rng.uniform(3.0, 5.0))))
                busy.append((first, first + length))
                break
    return spec


def plan_videos(params: LongVideoParams) -> list[VideoSpec]:
    """Every video of the dataset (the plan has its own random stream)."""
    if params.subjects < 2:
        raise MerecError("synth_lv.subjects must be at least 2 for leave-one-subject-out evaluation")
    rng = np.random.default_rng([params.seed, 3])
    return [
        plan_video(subject, index, params, rng)
        for subject in range(1, params.subjects + 1)
        for index in range(1, params.videos_per_subject + 1)
    ]


def _smooth_drift(frames: int, scale: float, smooth_frames: float, rng: np.random.Generator) -> np.ndarray:
    """A slow random drift of peak ``scale``, smooth over about ``smooth_frames`` frames."""
    steps = rng.normal(0.0, 1.0, frames + 1)
    walk = np.cumsum(cv2.GaussianBlur(steps.reshape(1, -1), (1, 0), sigmaX=max(smooth_frames, 1.0)).ravel())[:frames]
    walk -= walk[0]
    peak = np.abs(walk).max()
    return walk / peak * scale if peak > 0 else walk


def frame_file(video: str, number: int, frames: int) -> str:
    """``<video>_<nnnn>.jpg``: 4 digits, more when the video needs them (the release's naming)."""
    return f"{video}_{number:0{max(4, len(str(frames)))}d}.jpg"


def render_video(subject: Subject, spec: VideoSpec, params: LongVideoParams, folder: Path) -> None:
    """Render and write a video frame by frame (memory independent of its length)."""
    rng = np.random.default_rng([params.seed, spec.subject, spec.index, 2])
    n, fps = spec.frames, params.fps
    unit = subject.iod / REFERENCE_IOD
    events = []
    for event in spec.events:
        amplitude = params.micro_amplitude_px if event.kind == "micro" else params.macro_amplitude_px
        field_ = expression_field(subject, event.aus) * amplitude
        style = subject.style
        timing = profile(n, event.onset, event.apex, event.offset, style.rise_power, style.fall_power)
        events.append((field_, timing))
    blink_field = subject.field(BLINK) * params.blink_px
    talk_field = subject.field(TALK) * params.talk_amplitude_px
    t = np.arange(n)
    talk = np.zeros(n)
    for first, last, hertz in spec.talks:
        inside = (t >= first) & (t <= last)
        talk[inside] = 0.5 - 0.5 * np.cos(2 * np.pi * hertz * (t[inside] - first) / fps)
    blink = np.zeros(n)
    half = max(1, round(0.08 * fps))  # a blink closes and opens in about 0.16 s
    for centre in spec.blinks:
        near = np.abs(t - centre) <= half
        blink[near] = np.maximum(blink[near], 1.0 - np.abs(t[near] - centre) / (half + 1))
    smooth = 2.0 * fps  # head and light drift over seconds
    drift_x = _smooth_drift(n, params.head_motion_px * unit, smooth, rng)
    drift_y = _smooth_drift(n, params.head_motion_px * unit, smooth, rng)
    angle = _smooth_drift(n, np.deg2rad(0.3) * params.head_motion_px, smooth, rng)
    yaw = _smooth_drift(n, np.deg2rad(params.head_rotation_deg), smooth, rng)
    pitch = _smooth_drift(n, np.deg2rad(params.head_rotation_deg), smooth, rng)
    light = 1.0 + _smooth_drift(n, params.illumination_drift, 4.0 * fps, rng) + params.flicker * rng.normal(0, 1, n)
    folder.mkdir(parents=True)
    for i in range(n):
        skin = np.zeros_like(blink_field)
        for field_, timing in events:
            if timing[i] > 0:
                skin += field_ * np.float32(timing[i])
        if blink[i] > 0:
            skin += blink_field * np.float32(blink[i])
        if talk[i] > 0:
            skin += talk_field * np.float32(talk[i])
        displacement = skin + parallax(subject.depth, yaw[i], pitch[i], subject.pivot)
        shade = 1.0 + params.shading * divergence(skin)[..., None]
        frame = subject.render(displacement, np.array([drift_x[i], drift_y[i]]), angle[i], light[i]) * shade
        frame += rng.normal(0.0, params.noise_std, frame.shape)
        write_image(folder / frame_file(spec.name, i + 1, n), np.clip(np.rint(frame), 0, 255).astype(np.uint8),
                    params.jpeg_quality)  # fmt: skip


def write_long_video_workbook(path: Path, videos: list[VideoSpec], params: LongVideoParams) -> None:
    """The SAMM-LV annotation workbook (sheet ``FACS_Movement_Only``, header on Excel row 10)."""
    notes = {1: "SAMM Long Videos: FACS coded movements (synthetic, generated by merec)",
             3: f"merec.synth seed={params.seed}; {params.fps:g} fps"}  # fmt: skip
    rows = [
        [
            f"{video.subject:03d}",
            event.filename,
            "synth",
            *event.annotated,
            event.annotated[2] - event.annotated[0] + 1,
            TYPE_NAMES[event.kind],
            au_string(event.aus),
            None,
        ]
        for video in videos
        for event in video.events
    ]
    write_sheet(path, "FACS_Movement_Only", notes, LV_HEADER_ROW, LV_COLUMNS, rows)


def write_emotion_workbook(path: Path, videos: list[VideoSpec]) -> None:
    """The micro rows' emotions in the short-clip release's layout (sheet ``MICRO_ONLY``, header on row 14)."""
    notes = {1: "SAMM Micro-Movement Database: FACS codes of the long videos' micro rows (synthetic, merec)"}
    rows = [
        samm_row(video.subject, event.filename, event.annotated, event.aus, event.emotion)
        for video in videos
        for event in video.events
        if event.kind == "micro"
    ]
    write_sheet(path, "MICRO_ONLY", notes, HEADER_ROW, SAMM_COLUMNS, rows)


_RENDER: dict[str, object] = {}


def _init_render(subjects: dict[int, Subject], params: LongVideoParams) -> None:
    _RENDER.update(subjects=subjects, params=params)


def _write_video(job: tuple[VideoSpec, Path]) -> str:
    spec, folder = job
    render_video(_RENDER["subjects"][spec.subject], spec, _RENDER["params"], folder)  # type: ignore[index,arg-type]
    return spec.name


def generate_long_videos(root: PathLike, params: LongVideoParams) -> list[VideoSpec]:
    """Write the synthetic long-video dataset to ``root`` (replaced atomically) and return its plan."""
    videos = plan_videos(params)
    subjects = make_subjects(params)
    with atomic_dir(root) as tmp:
        jobs = [(video, tmp / FRAMES_FOLDER / video.name) for video in videos]
        for _ in ordered_map(_write_video, jobs, available_threads(), "synth long videos", _init_render,
                             (subjects, params)):  # fmt: skip
            pass
        write_long_video_workbook(tmp / LONG_VIDEO_ANNOTATION, videos, params)
        write_emotion_workbook(tmp / EMOTION_ANNOTATION, videos)
        write_json(
            tmp / MANIFEST,
            {
                "fps": params.fps,
                "params": params.__dict__,
                "subjects": {
                    f"{number:03d}": {"identity": subject.identity, "real": subject.real, "source": subject.source}
                    for number, subject in subjects.items()
                },
                "videos": [asdict(video) for video in videos],
            },
        )
    frames = sum(video.frames for video in videos)
    events = sum(len(video.events) for video in videos)
    LOG.info("wrote %d videos (%d frames, %d expressions) of %d subjects to %s", len(videos), frames, events,
             params.subjects, root)  # fmt: skip
    return videos
