"""The embedded default dataset: synthetic micro-expressions on real face photos, in SAMM's format.

Generative model (documented in docs/synthetic-dataset.md):

* **Subjects.** Every subject is its own identity (:mod:`merec.synth.identities`): the real face
  photos first (by default the two public-domain portraits that ship with scikit-image and
  matplotlib), then landmark-driven morphs of them with another face geometry and skin tone. Each
  is placed in the frame with its own scale, small rotation, illumination gain, gamma and colour
  cast. Classes are balanced per subject: identity and appearance carry no class information.
* **Micro-expression.** Each clip shows one expression made of action units (AUs). Every AU is a
  smooth displacement field anchored on dlib landmarks (brows, lids, cheeks, lip corners, chin),
  shaped by the subject's own AU morphology (:mod:`merec.synth.motion`: anchor, direction, extent,
  elongation, asymmetry, a satellite component, the timing of rise and fall). Classes:
  *surprise* = AU1+AU2 (+AU5, +AU25), *positive* = AU12 (+AU6, +AU25), *negative* = one of five
  emotions with its FACS prototype: anger AU4+AU7(+AU17), contempt a one-sided AU14 or AU12,
  disgust AU10(+AU4, +AU17), fear AU1+AU4(+AU2, +AU20), sadness AU15(+AU1, +AU4, +AU17). The
  classes overlap in single AUs (fear and surprise both raise the brows), so the whole spatial
  pattern decides. The peak displacement is ``amplitude_px`` measured at a 128-px aligned crop
  (inter-ocular distance 46 px), scaled per sample by an intensity in [0.4, 1] with per-AU
  jitter; AU12/AU14 may be one-sided. Skin shading follows the motion (``shading``).
* **Nuisances.** A smooth random head drift (translation, in-plane rotation and a small
  out-of-plane rotation whose parallax alignment cannot undo), eye blinks at random times,
  per-frame illumination flicker, Gaussian sensor noise and JPEG compression; the annotated onset,
  apex and offset differ from the true ones by up to ``annotation_jitter`` frames, as human
  coders' do.

Everything is deterministic from ``seed``. Frames go to ``<root>/<sss>/<sss>_<n>/<sss>_<frame>.jpg``
and the annotations to ``SAMM_Micro_FACS_Codes_v2.xlsx`` (sheet ``MICRO_ONLY``, header on row 14),
so the SAMM adapter reads the result like the real dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from merec.config import Params
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, write_image, write_json
from merec.landmarks import eye_centres, interocular_distance
from merec.runtime import available_threads, ordered_map
from merec.synth.identities import Identity, make_identities
from merec.synth.motion import (
    BLINK_FIELD,
    REFERENCE_IOD,
    AuStyle,
    Component,
    canonical_components,
    displacement_field,
    divergence,
    draw_style,
    face_depth,
    parallax,
    profile,
    turned,
    turned_source,
)

LOG = logging.getLogger("merec.synth")

ANNOTATION_FILE = "SAMM_Micro_FACS_Codes_v2.xlsx"
SAMM_COLUMNS = [
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
]  # fmt: skip
HEADER_ROW = 14  # SAMM's header sits on Excel row 14
# FACS prototypes (EMFACS-style) of the negative emotions: AU -> probability of appearing.
# They overlap the other classes on purpose: fear raises the brows like surprise, contempt pulls
# one lip corner like a one-sided smile, so the 3-class problem needs the whole pattern.
NEGATIVE_PROTOTYPES: dict[str, dict[str, float]] = {
    "Anger": {"4": 1.0, "7": 0.7, "17": 0.3},
    "Contempt": {"R14": 0.5, "L14": 0.5, "R12": 0.3},
    "Disgust": {"4": 0.6, "10": 1.0, "17": 0.3},
    "Fear": {"1": 1.0, "2": 0.6, "4": 1.0, "20": 0.6},
    "Sadness": {"1": 0.8, "4": 0.8, "15": 1.0, "17": 0.4},
}
BLINK = canonical_components(BLINK_FIELD)
NEGATIVE_EMOTIONS = ("Anger", "Contempt", "Disgust", "Fear", "Sadness")
OBJECTIVE_CLASS = {"Happiness": 1, "Surprise": 2, "Anger": 3, "Disgust": 4, "Sadness": 5, "Fear": 6, "Contempt": 7}


@dataclass(frozen=True)
class SynthParams(Params):
    """Parameters of the generator (the ``synth`` section of params.yaml; defaults: the schema)."""

    section = "synth"
    seed: int
    photos: tuple[str, ...]
    subjects: int
    samples_per_class: int
    frame_size: int
    clip_frames: int
    amplitude_px: float
    head_motion_px: float
    noise_std: float
    flicker: float
    blink_prob: float
    annotation_jitter: int
    jpeg_quality: int
    morph: float
    au_variation: float
    shading: float
    head_rotation_deg: float
    head_pose_deg: float
    blink_px: float


@dataclass
class ClipSpec:
    """Ground truth of one generated clip."""

    subject: int
    filename: str
    emotion: str
    label: str
    aus: dict[str, float]
    first_frame: int
    onset: int
    apex: int
    offset: int
    blink_at: int | None
    annotated: tuple[int, int, int] = (0, 0, 0)


def au_string(aus: dict[str, float]) -> str:
    """SAMM-style AU string, e.g. ``4+7+R14``."""
    return "+".join(aus)


def choose_expression(label: str, rng: np.random.Generator) -> tuple[str, dict[str, float]]:
    """Emotion and AU intensities (keyed by SAMM AU code, e.g. ``R12``) for a class."""
    base = float(rng.uniform(0.4, 1.0))

    def jitter() -> float:
        return base * float(rng.uniform(0.7, 1.1))

    aus: dict[str, float] = {}
    if label == "surprise":
        aus = {"1": jitter(), "2": jitter()}
        for au, chance in (("5", 0.5), ("25", 0.3)):
            if rng.random() < chance:
                aus[au] = jitter()
        return "Surprise", aus
    if label == "positive":
        if rng.random() < 0.6:
            aus["6"] = jitter()
        aus[f"{rng.choice(['', '', 'R', 'L'])}12"] = jitter()
        if rng.random() < 0.2:
            aus["25"] = jitter()
        return "Happiness", aus
    emotion = str(rng.choice(NEGATIVE_EMOTIONS))
    prototype = NEGATIVE_PROTOTYPES[emotion]
    if emotion == "Contempt":  # one-sided: a single lip-corner AU
        code = str(rng.choice(list(prototype), p=np.array(list(prototype.values())) / sum(prototype.values())))
        return emotion, {code: jitter()}
    for au, chance in prototype.items():
        if rng.random() < chance:
            aus[au] = jitter()
    if not aus:
        first = next(iter(prototype))
        aus[first] = jitter()
    return emotion, aus


def _smooth_walk(n_frames: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth zero-start random drift of about ``scale`` amplitude."""
    steps = rng.normal(0.0, 1.0, n_frames)
    walk = np.cumsum(cv2.GaussianBlur(steps.reshape(1, -1), (1, 0), sigmaX=3.0).ravel())
    walk -= walk[0]
    peak = np.abs(walk).max()
    return walk / peak * scale if peak > 0 else walk


class Subject:
    """One synthetic subject: an identity placed in the frame with its own appearance and AU morphology."""

    def __init__(self, identity: Identity, style: AuStyle, size: int, rng: np.random.Generator):
        points = identity.landmarks
        self.identity = identity.name
        self.real = identity.real
        self.source = identity.source
        self.style = style
        self.photo = identity.image.astype(np.float32)
        right, left = eye_centres(points)
        iod = interocular_distance(points)
        target_iod = 0.22 * size * rng.uniform(0.9, 1.1)
        angle = np.deg2rad(rng.uniform(-6.0, 6.0))
        scale = target_iod / iod
        centre = (right + left) / 2 + np.array([0.0, 0.45 * iod])  # roughly the face centre
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        jitter = rng.uniform(-0.04, 0.04, 2) * size
        offset = np.array([size / 2, size / 2]) + jitter - np.array([[cos, -sin], [sin, cos]]) @ centre
        self.forward = np.array([[cos, -sin, offset[0]], [sin, cos, offset[1]]])  # photo -> frame
        self.landmarks = points @ self.forward[:, :2].T + self.forward[:, 2]
        self.rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        self.iod = target_iod
        self.depth = face_depth(self.landmarks, target_iod, (size, size))
        eyes = np.rint(np.mean(eye_centres(self.landmarks), axis=0)).astype(int)
        self.pivot = float(self.depth[eyes[1], eyes[0]])
        self.gain = rng.uniform(0.8, 1.15)
        self.gamma = rng.uniform(0.85, 1.15)
        self.tint = rng.uniform(0.92, 1.08, 3)

    def field(self, sides: tuple[tuple[Component, ...], ...], which: str = "") -> np.ndarray:
        """A displacement field of this subject's face, per unit amplitude."""
        size = self.depth.shape[0]
        return displacement_field(sides, self.landmarks, self.rotation, self.iod, (size, size), which)

    def render(self, displacement: np.ndarray, shift: np.ndarray, angle: float, light: float) -> np.ndarray:
        """Frame with a displacement field (2, H, W) and a global head pose change, as float RGB."""
        height, width = displacement.shape[1:]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        # backward warp: the content at p comes from p - D(p), then undo the head pose and placement
        px = xs - displacement[0]
        py = ys - displacement[1]
        centre = self.landmarks[27:36].mean(axis=0)
        cos, sin = np.cos(-angle), np.sin(-angle)
        qx = cos * (px - centre[0] - shift[0]) - sin * (py - centre[1] - shift[1]) + centre[0]
        qy = sin * (px - centre[0] - shift[0]) + cos * (py - centre[1] - shift[1]) + centre[1]
        inverse = cv2.invertAffineTransform(self.forward)
        map_x = (inverse[0, 0] * qx + inverse[0, 1] * qy + inverse[0, 2]).astype(np.float32)
        map_y = (inverse[1, 0] * qx + inverse[1, 1] * qy + inverse[1, 2]).astype(np.float32)
        frame = cv2.remap(self.photo, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(frame / 255.0, 0, 1) ** self.gamma * 255.0
        return frame * self.tint * self.gain * light


class SubjectSettings(Protocol):
    """The parameters every synthetic dataset shares for its subjects."""

    seed: int
    subjects: int
    photos: tuple[str, ...]
    morph: float
    au_variation: float
    frame_size: int


def make_subjects(params: SubjectSettings) -> dict[int, Subject]:
    """Every subject of a synthetic dataset: its identity, AU morphology and placement (own random stream)."""
    rng = np.random.default_rng([params.seed, 1])
    identities = make_identities(params.subjects, rng, params.photos, params.morph)
    return {
        number: Subject(identity, draw_style(rng, params.au_variation), params.frame_size, rng)
        for number, identity in enumerate(identities, start=1)
    }


def plan_clips(params: SynthParams, rng: np.random.Generator) -> list[ClipSpec]:
    """Decide every clip's class, AUs and timing (balanced classes per subject)."""
    clips = []
    labels = ["negative", "positive", "surprise"]
    for subject in range(1, params.subjects + 1):
        order = [label for label in labels for _ in range(params.samples_per_class)]
        rng.shuffle(order)
        for n, label in enumerate(order, start=1):
            emotion, aus = choose_expression(label, rng)
            onset = int(rng.integers(4, 9))
            apex = onset + int(rng.integers(6, 12))
            offset = min(apex + int(rng.integers(6, 12)), params.clip_frames - 3)
            if not onset < apex < offset:
                raise MerecError(f"synth.clip_frames={params.clip_frames} is too short; use at least 32")
            blink = int(rng.integers(1, params.clip_frames - 4)) if rng.random() < params.blink_prob else None
            # human coders disagree by a frame or two: the workbook holds jittered onset/apex/offset
            shift = rng.integers(-params.annotation_jitter, params.annotation_jitter + 1, 3)
            annotated = (max(onset + int(shift[0]), 0), apex + int(shift[1]), offset + int(shift[2]))
            annotated = (annotated[0], max(annotated[1], annotated[0] + 2), min(annotated[2], params.clip_frames - 1))
            clips.append(
                ClipSpec(
                    subject=subject,
                    filename=f"{subject:03d}_{n}",
                    emotion=emotion,
                    label=label,
                    aus=aus,
                    first_frame=int(rng.integers(1000, 9000)),
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    blink_at=blink,
                    annotated=annotated,
                )
            )
    return clips


def clip_pose(params: SynthParams, subject: int, filename: str) -> tuple[float, float]:
    """A clip's static head turn (yaw, pitch) in degrees: yaw uniform in +-``head_pose_deg``, pitch
    in half that, from the clip's own stream (the other random draws do not change with it)."""
    if params.head_pose_deg == 0:
        return 0.0, 0.0
    rng = np.random.default_rng([params.seed, subject, int(filename.split("_")[-1]), 1])
    yaw, pitch = rng.uniform(-1.0, 1.0, 2) * params.head_pose_deg * np.array([1.0, 0.5])
    return float(yaw), float(pitch)


def expression_field(subject: Subject, aus: dict[str, float]) -> np.ndarray:
    """The displacement field (2, H, W) of an expression (SAMM AU codes -> intensity) at unit amplitude."""
    size = subject.depth.shape[0]
    out = np.zeros((2, size, size), np.float32)
    for code, intensity in aus.items():
        number = int("".join(ch for ch in code if ch.isdigit()))
        side = code[0] if code[0] in "LR" else ""
        out += intensity * subject.field(subject.style.components[number], side)
    return out


def _static_pose(subject: Subject, clip: ClipSpec, params: SynthParams) -> np.ndarray | None:
    yaw, pitch = clip_pose(params, clip.subject, clip.filename)
    if yaw == pitch == 0:
        return None
    centre = np.mean(eye_centres(subject.landmarks), axis=0)
    return turned_source(subject.depth, subject.pivot, centre, yaw, pitch)


def _render_clip(subject: Subject, clip: ClipSpec, params: SynthParams, rng: np.random.Generator) -> list[np.ndarray]:
    expression = expression_field(subject, clip.aus) * params.amplitude_px
    blink_field = subject.field(BLINK) * params.blink_px
    style = subject.style
    timing = profile(params.clip_frames, clip.onset, clip.apex, clip.offset, style.rise_power, style.fall_power)
    unit = subject.iod / REFERENCE_IOD
    drift_x = _smooth_walk(params.clip_frames, params.head_motion_px * unit, rng)
    drift_y = _smooth_walk(params.clip_frames, params.head_motion_px * unit, rng)
    drift_angle = _smooth_walk(params.clip_frames, np.deg2rad(0.3) * params.head_motion_px, rng)
    yaw = _smooth_walk(params.clip_frames, np.deg2rad(params.head_rotation_deg), rng)
    pitch = _smooth_walk(params.clip_frames, np.deg2rad(params.head_rotation_deg), rng)
    light = 1.0 + params.flicker * rng.normal(0.0, 1.0, params.clip_frames)
    source = _static_pose(subject, clip, params)
    frames = []
    for t in range(params.clip_frames):
        skin = expression * timing[t]
        if clip.blink_at is not None and abs(t - clip.blink_at) <= 2:
            skin = skin + blink_field * (1.0 - abs(t - clip.blink_at) / 3.0)
        displacement = skin + parallax(subject.depth, yaw[t], pitch[t], subject.pivot)
        if source is not None:
            displacement = turned(source, displacement)
        shade = 1.0 + params.shading * divergence(skin)[..., None]
        frame = subject.render(displacement, np.array([drift_x[t], drift_y[t]]), drift_angle[t], light[t]) * shade
        frame += rng.normal(0.0, params.noise_std, frame.shape)
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return frames


def write_sheet(
    path: Path, sheet_name: str, notes: dict[int, str], header_row: int, columns: list[str], rows: list[list]
) -> None:
    """A one-sheet workbook as the releases lay them out: notes on the rows above, the header on
    ``header_row``, then one row per entry."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = sheet_name
    for row, text in notes.items():
        sheet.cell(row=row, column=1, value=text)
    for row, values in enumerate([columns, *rows], start=header_row):
        for column, value in enumerate(values, start=1):
            sheet.cell(row=row, column=column, value=value)
    book.save(path)


def samm_row(subject: int, filename: str, frames: tuple[int, int, int], aus: dict[str, float], emotion: str) -> list:
    """One row of SAMM's short-clip workbook (:data:`SAMM_COLUMNS`)."""
    onset, apex, offset = frames
    return [subject, filename, "synth", onset, apex, offset, offset - onset + 1, "Micro", au_string(aus), emotion,
            OBJECTIVE_CLASS.get(emotion, 7), None]  # fmt: skip


def write_workbook(path: Path, clips: list[ClipSpec], params: SynthParams) -> None:
    """The SAMM-format annotation workbook of ``clips`` (sheet ``MICRO_ONLY``, header on row 14)."""
    notes = {
        1: "SAMM Micro-Movement Database: FACS codes (synthetic, generated by merec)",
        3: f"merec.synth seed={params.seed}; frames per clip {params.clip_frames}",
        5: "Onset, apex and offset are frame numbers as in the file names.",
    }
    rows = [
        samm_row(
            clip.subject, clip.filename, tuple(clip.first_frame + f for f in clip.annotated), clip.aus, clip.emotion
        )
        for clip in clips
    ]
    write_sheet(path, "MICRO_ONLY", notes, HEADER_ROW, SAMM_COLUMNS, rows)


_RENDER: dict[str, object] = {}


def _init_render(subjects: dict[int, Subject], params: SynthParams) -> None:
    _RENDER.update(subjects=subjects, params=params)


def _write_clip(job: tuple[ClipSpec, Path]) -> str:
    """Render one clip (its own random stream: the result does not depend on the order) into ``folder``."""
    clip, folder = job
    params: SynthParams = _RENDER["params"]  # type: ignore[assignment]
    clip_rng = np.random.default_rng([params.seed, clip.subject, int(clip.filename.split("_")[-1])])
    folder.mkdir(parents=True)
    frames = _render_clip(_RENDER["subjects"][clip.subject], clip, params, clip_rng)  # type: ignore[index]
    for t, frame in enumerate(frames):
        write_image(folder / f"{clip.subject:03d}_{clip.first_frame + t:05d}.jpg", frame, params.jpeg_quality)
    return clip.filename


def generate(root: PathLike, params: SynthParams) -> list[ClipSpec]:
    """Write the synthetic dataset to ``root`` (replaced atomically) and return its clips."""
    if params.subjects < 2:
        raise MerecError("synth.subjects must be at least 2 for leave-one-subject-out evaluation")
    clips = plan_clips(params, np.random.default_rng(params.seed))
    subjects = make_subjects(params)
    with atomic_dir(root) as tmp:
        jobs = [(clip, tmp / f"{clip.subject:03d}" / clip.filename) for clip in clips]
        work = ordered_map(_write_clip, jobs, available_threads(), "synth clips", _init_render, (subjects, params))
        for _ in work:
            pass
        write_workbook(tmp / ANNOTATION_FILE, clips, params)
        write_json(
            tmp / "synth.json",
            {
                "params": params.__dict__,
                "subjects": {
                    f"{number:03d}": {"identity": subject.identity, "real": subject.real, "source": subject.source}
                    for number, subject in subjects.items()
                },
                "clips": [clip.__dict__ for clip in clips],
            },
        )
    LOG.info("wrote %d clips of %d subjects to %s", len(clips), params.subjects, root)
    return clips
