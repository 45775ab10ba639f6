"""Long-video datasets for spotting: one table of videos and one of annotated intervals.

**SAMM Long Videos** (:func:`read_samm_lv`): the workbook ``SAMM_LongVideos_V<k>_Release.xlsx``
(the newest version in the root; sheet ``FACS_Movement_Only``, header on Excel row 10:
Subject, Filename, Onset, Apex, Offset, Duration, Type, Action Units, Notes) and one folder of
frames per video, ``SAMM_longvideos/006_1/006_1_0001.jpg`` (1-based, 4 or 5 digits). A row's
video is the first two parts of its Filename (``006_1_2`` -> ``006_1``); Type ``Macro`` is a
macro-expression and ``Micro - 1/2`` a micro-expression. The release has no emotion column: when
the short-clip workbook ``SAMM_Micro_FACS_Codes_v2.xlsx`` is in the same root, each micro row
takes its Estimated Emotion by Filename (as MEAN does).

The releases' quirks, each handled as the public spotting code does and listed in
``corrections`` (row, video, field, old, new, reason) or ``skipped`` (row, video, reason):

* fractional frame numbers (``566.4``) are truncated (SoftNet and MEAN read them with ``int``);
* Apex ``-1`` is "not annotated" (the interval keeps its onset and offset);
* Offset ``0`` takes the apex (SoftNet, MDMD); without an apex the row is skipped;
* Onset ``0`` (frames start at 1; long macro rows) is skipped (SoftNet leaves them out).

**CAS(ME)^2** (:func:`read_casme2_lv`): ``code_final.xlsx`` without a header row and its two
naming sheets, frames under ``rawpic/`` (details in its docstring).

**CAS(ME)^3 part A** (:func:`read_casme3_lv`): the micro-expression workbook of the short-clip
reader and the macro-expression one, each recorded task as a video (details in its docstring).

Any other problem (a missing or unreadable cell, an unknown Type, an apex outside the interval,
an interval past the video's last frame, a missing video folder) is an error naming the row, or
with ``on_error="skip"`` a row of ``skipped``.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.aus import canonical_aus
from merec.datasets.casme3 import ANNOTATION as CASME3_MICRO
from merec.datasets.casme3 import ERRATA as CASME3_ERRATA
from merec.datasets.cells import RowProblem, cell_text, frame_number, is_missing, missing_frame_text, subject_number
from merec.datasets.errata import apply_errata
from merec.datasets.frames import list_frames
from merec.datasets.sheets import read_records
from merec.errors import MerecError

SAMM_LV_PATTERN = re.compile(r"SAMM_LongVideos_V(\d+)_Release\.xlsx", re.IGNORECASE)
SAMM_LV_COLUMNS = ("Subject", "Filename", "Onset", "Apex", "Offset", "Type")
SAMM_LV_FPS = 200.0
SYNTH_MANIFEST = "synth.json"  # merec's synthetic releases: their parameters, the frame rate among them
SAMM_CLIPS = "SAMM_Micro_FACS_Codes_v2.xlsx"  # the short-clip release: emotions of the micro rows
CASME2_LV_ANNOTATION = "code_final.xlsx"
CASME2_LV_COLUMNS = ("subject", "video", "onset", "apex", "offset", "aus", "emotion", "type")
CASME2_LV_FPS = 30.0
CASME3_LV_MACRO = "cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx"
CASME3_LV_FPS = 30.0
CASME3_MACRO_ROWS = 100_000  # macro-expression rows are numbered this plus their Excel row
INTERVAL_COLUMNS = ("row", "subject", "video", "onset", "apex", "offset", "type", "emotion", "aus")
SKIP_COLUMNS = ("row", "video", "reason")
VIDEO_COLUMNS = ("video", "subject", "folder", "frames", "first", "last", "fps")
CORRECTION_COLUMNS = ("row", "video", "field", "old", "new", "reason")
FRAME_FIELDS = ("onset", "apex", "offset")


@dataclass(frozen=True)
class LongVideos:
    """A long-video dataset: its videos, its intervals, and what ingest changed or left out."""

    videos: pd.DataFrame  #: video, subject, folder, frames (count), first and last frame number, fps
    intervals: pd.DataFrame  #: one row per annotated interval (:data:`INTERVAL_COLUMNS`)
    corrections: pd.DataFrame  #: :data:`CORRECTION_COLUMNS`
    skipped: pd.DataFrame  #: :data:`SKIP_COLUMNS`


def samm_lv_annotation(root: Path) -> Path:
    """The newest ``SAMM_LongVideos_V<k>_Release.xlsx`` in ``root``."""
    found = sorted(
        (int(match.group(1)), path)
        for path in root.iterdir()
        if path.is_file() and (match := SAMM_LV_PATTERN.fullmatch(path.name))
    )
    if not found:
        raise MerecError(
            f"{root}: no SAMM_LongVideos_V<k>_Release.xlsx; put the SAMM Long Videos release there as downloaded "
            "(the workbook and the SAMM_longvideos folder of frames)"
        )
    return found[-1][1]


def _annotation(root: Path, name: str, release: str, contents: str) -> Path:
    """The annotation file ``name`` of a release at ``root``; an error saying what to put there if it is missing."""
    path = root / name
    if not path.is_file():
        raise MerecError(f"{root}: no {name}; put the {release} release there as downloaded ({contents})")
    return path


def _interval_type(value: Any) -> str:
    text = cell_text(value).casefold()
    if text.startswith("micro"):
        return "micro"
    if text.startswith("macro"):
        return "macro"
    raise RowProblem(f"{cell_text(value)!r} is not a type (Macro or Micro - 1/2; macro- or micro-expression)")


def _frame(value: Any, field: str, fixes: list[tuple[str, Any, Any, str]]) -> int | None:
    """A frame cell; None when not annotated; a fractional number truncated and recorded."""
    if missing_frame_text(value) is not None:
        return None
    fractional = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if fractional and not float(value).is_integer() and value > 0:
        fixes.append((field, value, int(value), "fractional frame number truncated (as SoftNet and MEAN read it)"))
        return int(value)
    return frame_number(value)


def _emotions(root: Path) -> dict[str, str]:
    """Filename -> Estimated Emotion from the short-clip workbook, when it is in the root."""
    path = root / SAMM_CLIPS
    if not path.is_file():
        return {}
    rows = read_records(path, ("Filename", "Estimated Emotion"), sheet="MICRO_ONLY", header_row=14)
    return {cell_text(row["Filename"]): cell_text(row["Estimated Emotion"]).casefold() for _, row in rows}


@dataclass(frozen=True)
class RowFields:
    """What a format reads from one annotation row before the shared checks."""

    subject: str  #: dataset-qualified
    video: str
    folder: Path  #: the video's frame folder
    name: str  #: how the row is named in messages (its Filename, or video and expression)
    kind: str  #: micro | macro
    cells: tuple[Any, Any, Any]  #: onset, apex and offset cells as released
    emotion: str
    aus: Any


def release_fps(root: Path, published: float) -> float:
    """The frame rate of a release: ``published``, unless the root is merec's synthetic release,
    whose ``synth.json`` states the rate it was generated at."""
    manifest = root / SYNTH_MANIFEST
    if manifest.is_file():
        try:
            return float(json.loads(manifest.read_text())["fps"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MerecError(f"{manifest}: no frame rate in it ({exc}); regenerate the synthetic dataset") from exc
    return published


def read_samm_lv(
    root: str | Path, dataset: str = "samm_lv", on_error: str = "fail", fps: float | None = None, errata: bool = True
) -> LongVideos:
    """The SAMM Long Videos release at ``root`` as tables (see the module docstring); ``fps``
    overrides the release's frame rate (200, or the synthetic release's own); the release has no
    errata list (``errata`` is there for a common signature)."""
    root = Path(root)
    path = samm_lv_annotation(root)
    records = read_records(
        path, SAMM_LV_COLUMNS, sheet="FACS_Movement_Only", header_row=10, optional=("Action Units", "Notes")
    )
    emotions = _emotions(root)
    frames_root = root / "SAMM_longvideos" if (root / "SAMM_longvideos").is_dir() else root

    def fields(record: dict[str, Any]) -> RowFields:
        subject = subject_number(record["Subject"], 3, "6 or 006")
        filename = cell_text(record["Filename"])
        parts = filename.split("_")
        if len(parts) < 3 or not parts[0].isdigit():
            raise RowProblem(f"Filename {filename!r} is not <subject>_<video>_<n> (like 006_1_2)")
        video = "_".join(parts[:2])
        kind = _interval_type(record["Type"])
        return RowFields(f"{dataset}/{subject}", video, frames_root / video, filename, kind,
                         (record["Onset"], record["Apex"], record["Offset"]),
                         emotions.get(filename, "") if kind == "micro" else "", record.get("Action Units"))  # fmt: skip

    return collect(path, records, fields, fps or release_fps(root, SAMM_LV_FPS), on_error)


def read_casme2_lv(
    root: str | Path, dataset: str = "casme2_lv", on_error: str = "fail", fps: float | None = None, errata: bool = True
) -> LongVideos:
    """The CAS(ME)^2 release at ``root`` (``code_final.xlsx`` and ``rawpic/``) as tables.

    ``code_final.xlsx`` has no header: its first sheet (``CASFEcode_final``) holds per row the
    subject number (1..22), the expression (``anger1_1``: the clip ``anger1``), onset, apex, offset,
    AUs, emotion and type (``micro-expression`` / ``macro-expression``); sheet ``naming rule1``
    maps the subject number to its folder (``[15, 's15', 1]``: subject 1 is ``s15``), sheet
    ``naming rule2`` the clip to its code (``0401``, ``anger1``). Frames:
    ``rawpic/s15/15_0401girlcrashing/img001.jpg`` (1-based, 30 fps); a video is
    ``<folder number>_<code>`` (``15_0401``). Offsets of 0 take the apex (listed). No errata list is
    known for this release (``errata`` is there for a common signature).
    """
    root = Path(root)
    path = _annotation(root, CASME2_LV_ANNOTATION, "CAS(ME)^2", "code_final.xlsx and the rawpic folder of frames")
    with pd.ExcelFile(path, engine="calamine") as book:
        sheets = [str(name) for name in book.sheet_names]
    for needed in ("naming rule1", "naming rule2"):
        if needed not in sheets:
            raise MerecError(
                f"{path}: no sheet {needed!r} (found {', '.join(sheets)}); use the official file, unchanged"
            )
    folders = {
        cell_text(row["subject"]): (cell_text(row["number"]), cell_text(row["folder"]))
        for _, row in read_records(path, ("number", "folder", "subject"), sheet="naming rule1", headerless=True)
    }
    codes = {
        cell_text(row["name"]).casefold(): f"{int(cell_text(row['code'])):04d}"
        for _, row in read_records(path, ("code", "name"), sheet="naming rule2", headerless=True)
        if cell_text(row["code"]).isdigit()
    }
    records = read_records(path, CASME2_LV_COLUMNS, sheet=sheets[0], headerless=True)

    def fields(record: dict[str, Any]) -> RowFields:
        subject = cell_text(record["subject"])
        if subject not in folders:
            raise RowProblem(f"subject {subject!r} is not in sheet 'naming rule1'")
        number, folder = folders[subject]
        clip = cell_text(record["video"]).split("_")[0].casefold()
        if clip not in codes:
            raise RowProblem(f"expression {cell_text(record['video'])!r} has no code in sheet 'naming rule2'")
        video = f"{number}_{codes[clip]}"
        found = sorted((root / "rawpic" / folder).glob(f"{video}*"))
        return RowFields(f"{dataset}/{folder}", video, found[0] if found else root / "rawpic" / folder / video,
                         f"{folder} {cell_text(record['video'])}", _interval_type(record["type"]),
                         (record["onset"], record["apex"], record["offset"]), cell_text(record["emotion"]).casefold(),
                         record["aus"])  # fmt: skip

    return collect(path, records, fields, fps or CASME2_LV_FPS, on_error)


def _casme3_subject(value: Any) -> str:
    """``spNO.1`` as released; a bare number (as some copies of the macro workbook have) gets the prefix."""
    text = cell_text(value)
    return f"spNO.{int(float(text))}" if text.replace(".", "", 1).isdigit() else text


def read_casme3_lv(
    root: str | Path, dataset: str = "casme3_lv", on_error: str = "fail", fps: float | None = None, errata: bool = True
) -> LongVideos:
    """CAS(ME)^3 part A at ``root`` as long videos: each recorded task ``part_A/spNO.1/a/color/<n>.jpg``
    (``part_A/`` optional; 1-based, unpadded, 30 fps) is a video ``spNO.1_a``.

    Micro-expressions come from the short-clip reader's workbook
    ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (Subject, Filename, Onset, Apex, Offset, AU,
    emotion) with the same official errata (:data:`merec.datasets.casme3.ERRATA`, unless ``errata``
    is false; listed in ``corrections``, removed rows in ``skipped``); macro-expressions from
    ``cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx`` (sub, seq, onset, apex, offset,
    emotion) when it is there. A macro row's ``row`` is 100000 plus its Excel row. The release's
    frame drops are left to the spotting features, which skip missing frames and name them.
    """
    root = Path(root)
    micro_path = _annotation(
        root, CASME3_MICRO, "CAS(ME)^3 part A", "the label workbooks and the part_A folder of frames"
    )
    frames_root = root / "part_A" if (root / "part_A").is_dir() else root
    rate = fps or CASME3_LV_FPS
    errata_fixes, removed, kept = [], [], []
    columns = ("Subject", "Filename", "Onset", "Apex", "Offset")
    for row, record in read_records(micro_path, columns, sheet="label", optional=("AU", "emotion")):
        made, gone = apply_errata(record, CASME3_ERRATA if errata else ())
        video = f"{_casme3_subject(record['Subject'])}_{cell_text(record['Filename'])}"
        if gone:
            removed.append((row, video, f"removed by erratum: {gone}"))
            continue
        errata_fixes += [(row, video, fix["field"], fix["old"], fix["new"], fix["source"]) for fix in made]
        kept.append((row, record))

    def fields_of(kind: str, subject_key: str, task_key: str, cells: tuple[str, str, str], aus_key: str):
        def fields(record: dict[str, Any]) -> RowFields:
            subject, task = _casme3_subject(record[subject_key]), cell_text(record[task_key])
            if not subject or not task:
                raise RowProblem("no subject or task (Filename) in the row")
            return RowFields(f"{dataset}/{subject}", f"{subject}_{task}", frames_root / subject / task / "color",
                             f"{subject} {task}", kind, tuple(record[c] for c in cells),  # type: ignore[arg-type]
                             cell_text(record.get("emotion")).casefold(), record.get(aus_key))  # fmt: skip

        return fields

    parts = [collect(micro_path, kept, fields_of("micro", "Subject", "Filename", columns[2:], "AU"), rate, on_error)]
    macro_path = root / CASME3_LV_MACRO
    if macro_path.is_file():
        records = read_records(macro_path, ("sub", "seq", "onset", "apex", "offset"), optional=("emotion", "AU"))
        macro = collect(macro_path, records, fields_of("macro", "sub", "seq", ("onset", "apex", "offset"), "AU"),
                        rate, on_error)  # fmt: skip
        parts.append(LongVideos(macro.videos, macro.intervals.assign(row=macro.intervals["row"] + CASME3_MACRO_ROWS),
                                macro.corrections.assign(row=macro.corrections["row"] + CASME3_MACRO_ROWS),
                                macro.skipped.assign(row=macro.skipped["row"] + CASME3_MACRO_ROWS)))  # fmt: skip
    corrections = pd.DataFrame(errata_fixes, columns=CORRECTION_COLUMNS)
    return LongVideos(
        videos=pd.concat([p.videos for p in parts]).drop_duplicates("video").sort_values("video", ignore_index=True),
        intervals=pd.concat([p.intervals for p in parts], ignore_index=True),
        corrections=pd.concat([corrections, *(p.corrections for p in parts)], ignore_index=True),
        skipped=pd.concat(
            [pd.DataFrame(removed, columns=SKIP_COLUMNS), *(p.skipped for p in parts)], ignore_index=True
        ),
    )


def collect(
    path: Path,
    records: list[tuple[int, dict[str, Any]]],
    fields: Callable[[dict[str, Any]], RowFields],
    fps: float,
    on_error: str = "fail",
) -> LongVideos:
    """The tables of a long-video release from its annotation rows: the quirks every release shares
    (module docstring) handled and listed, the rest checked against each video's frames."""
    videos: dict[str, dict[str, Any]] = {}
    intervals, corrections, skipped, problems = [], [], [], []
    for row, record in records:
        fixes: list[tuple[str, Any, Any, str]] = []
        try:
            got = fields(record)
            onset, apex, offset = (_frame(cell, f, fixes) for cell, f in zip(got.cells, FRAME_FIELDS, strict=True))
        except RowProblem as exc:
            problems.append((row, _row_name(record), str(exc)))
            continue
        if onset is None or onset == 0:
            skipped.append((row, got.video, f"onset {cell_text(got.cells[0]) or 'empty'}: frames start at 1 "
                            "(SoftNet leaves such rows out)"))  # fmt: skip
            continue
        if offset in (None, 0):
            if apex is None:
                skipped.append((row, got.video, "offset 0 or missing and no apex"))
                continue
            fixes.append(("offset", cell_text(got.cells[2]) or "empty", apex, "offset 0: the apex (SoftNet, MDMD)"))
            offset = apex
        problem = _interval_problem(onset, apex, offset) or _check_video(videos, got, offset, fps)
        if problem:
            problems.append((row, got.name, problem))
            continue
        corrections += [(row, got.video, field, old, new, why) for field, old, new, why in fixes]
        aus = "" if is_missing(got.aus) else canonical_aus(got.aus)
        intervals.append((row, got.subject, got.video, onset, apex, offset, got.kind, got.emotion, aus))
    if problems and on_error == "fail":
        listed = "; ".join(f"row {row} ({name}): {why}" for row, name, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise MerecError(
            f"{path}: {len(problems)} row(s) cannot be read: {listed}{more}. Fix the file or the frame folders, "
            "or leave the rows out with on_error='skip'"
        )
    skipped += [(row, name, why) for row, name, why in problems]
    return LongVideos(
        videos=pd.DataFrame(list(videos.values()), columns=VIDEO_COLUMNS),
        intervals=pd.DataFrame(intervals, columns=INTERVAL_COLUMNS),
        corrections=pd.DataFrame(corrections, columns=CORRECTION_COLUMNS),
        skipped=pd.DataFrame(sorted(skipped), columns=SKIP_COLUMNS),
    )


def _row_name(record: dict[str, Any]) -> str:
    return " ".join(
        cell_text(record.get(key)) for key in ("Filename", "subject", "video") if record.get(key) is not None
    )


def _interval_problem(onset: int, apex: int | None, offset: int) -> str | None:
    if offset < onset:
        return f"offset {offset} is before onset {onset}"
    if apex is not None and not onset <= apex <= offset:
        return f"apex {apex} is outside onset {onset} .. offset {offset}"
    return None


def _check_video(videos: dict[str, dict[str, Any]], got: RowFields, offset: int, fps: float) -> str | None:
    """Register the video (its folder listed once) and check the interval lies within its frames."""
    if got.video not in videos:
        if not got.folder.is_dir():
            return f"no frame folder {got.folder} for video {got.video}"
        numbers_ = sorted(list_frames(got.folder))
        if not numbers_:
            return f"{got.folder} holds no frames"
        values = (got.video, got.subject, str(got.folder), len(numbers_), numbers_[0], numbers_[-1], fps)
        videos[got.video] = dict(zip(VIDEO_COLUMNS, values, strict=True))
    last = videos[got.video]["last"]
    if offset > last:
        return f"offset {offset} is past the last frame ({last}) of video {got.video}"
    return None
