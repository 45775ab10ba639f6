"""SMIC (cropped release): no annotation file, everything comes from the folder layout.

``<root>/HS/s1/micro/{negative,positive,surprise}/s1_ne_01/*.bmp``: subject ``s1``, emotion = the
class folder name, clip ``s1_ne_01``. Spec key ``frames`` picks the camera sub-folder (default
``HS``, 100 fps; ``VIS`` or ``NIR``, 25 fps, for the other SMIC subsets). Onset is the first frame
of the clip and offset the last. SMIC has no apex: ingest estimates it (see
:mod:`merec.datasets.apex`) and lists it in ``corrections.csv``. Sample ids: ``<name>-s1-s1_ne_01``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from merec.datasets.cells import RowProblem, cell_text
from merec.datasets.frames import list_frames
from merec.datasets.ids import is_safe_id, sample_id
from merec.datasets.locations import clip_folder, damaged_frames, dataset_root, frames_base
from merec.datasets.validation import LOG, Candidate
from merec.errors import MerecError

FRAMES = "HS"
MICRO = "micro"
FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}
LAYOUT = f"the SMIC cropped frame folders {FRAMES}/s1/{MICRO}/negative/s1_ne_01/*.bmp"
_SUBJECT = re.compile(r"s?0*([0-9]+)", re.IGNORECASE)
_CLIP_SUBJECT = re.compile(r"^s0*([0-9]+)_", re.IGNORECASE)


def read(name: str, spec: Mapping[str, Any], params_key: str | None = None, *, errata: bool = True) -> list[Candidate]:
    """Candidates of every clip folder under ``<root>/<frames>/<subject>/micro/<class>/``
    (SMIC has no annotation file, so no errata)."""
    params_key = params_key or f"datasets.{name}"
    root = dataset_root(name, spec, LAYOUT, params_key)
    base = frames_base(name, spec, root, FRAMES, params_key)
    if not base.is_dir():
        raise MerecError(
            f"dataset '{name}': folder {base} does not exist; put {LAYOUT} under {root}, "
            f"or set {params_key}.frames to the camera folder (HS, VIS or NIR)"
        )
    fps = float(spec.get("fps") or FPS.get(base.name.upper(), FPS[FRAMES]))
    damaged = damaged_frames(spec, root, base, params_key)
    found = [
        _candidate(name, base, subject.name, emotion.name, clip.name)
        for subject in _subfolders(base)
        for emotion in _subfolders(subject / MICRO)
        for clip in _subfolders(emotion)
    ]
    for candidate in found:
        candidate.fps = fps
        if candidate.frames_dir is not None:
            candidate.damaged = damaged.get(candidate.frames_dir, frozenset())
    if not found:
        raise MerecError(f"dataset '{name}': no clip folders found under {base}; put {LAYOUT} under {root}")
    return found


def match_key(subject: Any, clip: Any) -> tuple[str, str]:
    """MEGC2019 lookup key: subject ``s01``/``s1``/``1`` -> ``s1``, ``s01_ne_01`` -> ``s1_ne_01``"""
    text = cell_text(subject)
    match = _SUBJECT.fullmatch(text)
    if not match:
        raise RowProblem(f"{text!r} is not a SMIC subject (like s1 or s01)")
    clip_key = _CLIP_SUBJECT.sub(lambda m: f"s{int(m.group(1))}_", cell_text(clip))
    return f"s{int(match.group(1))}", clip_key.casefold()


def _candidate(name: str, base: Path, subject: str, emotion: str, clip: str) -> Candidate:
    where = str(base / subject / MICRO / emotion / clip)
    found = Candidate(where=where, emotion=emotion, apex_missing="no apex in SMIC", apex_required=False)
    for what, value in (
        ("subject folder", subject),
        ("class folder", emotion),
        ("clip folder", clip),
    ):
        if not is_safe_id(value):
            found.problems.append(f"{what} name {value!r} is not a plain name (letters, digits, _ . -)")
    if found.problems:
        return found
    found.subject = f"{name}/{subject}"
    found.sample = sample_id(found.subject, clip)
    try:
        found.key = match_key(subject, clip)
        found.frames_dir = clip_folder(base, subject, MICRO, emotion, clip)
        _add_phases(found)
    except (RowProblem, MerecError) as exc:
        found.problems.append(str(exc))
    return found


def _add_phases(found: Candidate) -> None:
    assert found.frames_dir is not None
    frames = list_frames(found.frames_dir)
    if not frames:
        raise RowProblem(f"no frame files (.bmp .jpg .png) in {found.frames_dir}")
    numbers = list(frames)
    found.onset, found.offset = numbers[0], numbers[-1]


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        LOG.warning("SMIC: %s is missing; its subject has no micro-expression clips", folder)
        return []
    return sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
