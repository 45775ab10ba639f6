"""Shared pieces of the dataset adapters: the samples table, ids, paths, frames and validation.

Every adapter turns its annotation file (or folder layout) into :class:`Candidate` rows, one per
annotated clip, recording each problem it finds instead of stopping at the first one.
:func:`finalize` then maps emotions to classes, checks phases, frame folders and frame files,
finds duplicated sample ids, and either raises one error that lists every problem
(``on_error="fail"``) or leaves those rows out and lists them in ``skipped`` (``"skip"``).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.aus import canonical_aus
from merec.io import MerecError

LOG = logging.getLogger("merec.datasets")

SAMPLE_COLUMNS = [
    "dataset", "subject", "fold", "sample", "frames_dir", "onset", "apex", "offset",
    "emotion", "label", "aus", "action_units",
]  # fmt: skip
SKIPPED_COLUMNS = ["dataset", "row", "subject", "sample", "reason"]
ON_ERROR = ("fail", "skip")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
MAX_LISTED = 20  # problems listed in one error message
EXCLUDED = "label excluded: "
FOLD_DROPPED = "fold dropped: "

_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_LAST_DIGITS = re.compile(r"([0-9]+)[^0-9]*$")
_FRAME_TEXT = re.compile(r"[0-9]+(?:\.0*)?")


class RowProblem(Exception):
    """A problem with one annotation row: collected, then raised or skipped by :func:`finalize`."""


@dataclass
class IngestResult:
    """The normalised samples table and the rows that were left out (with reasons)."""

    samples: pd.DataFrame
    skipped: pd.DataFrame


@dataclass
class Candidate:
    """One annotated clip as read from a dataset, before validation.

    ``where`` locates it for messages (``<file> row <n>`` or the clip folder); ``row`` is the
    spreadsheet row as Excel shows it (None for folder-only datasets); ``label`` is preset only
    when the source gives classes directly (MEGC2019); ``key`` is the (subject, clip) pair the
    MEGC2019 ground truth is matched on.
    """

    where: str
    row: int | None = None
    subject: str | None = None
    sample: str | None = None
    frames_dir: Path | None = None
    onset: int | None = None
    apex: int | None = None
    offset: int | None = None
    emotion: str = ""
    action_units: str = ""
    aus: str = ""
    label: str | None = None
    key: tuple[str, str] | None = None
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# ids


def is_safe_id(value: str) -> bool:
    """True for a non-empty name of letters, digits, ``_ . -`` that starts with a letter/digit/_."""
    return bool(_SAFE_ID.fullmatch(value))


def check_name(name: str) -> str:
    """Validate a dataset name from params (it becomes part of ids and file names)."""
    if not isinstance(name, str) or not is_safe_id(name):
        raise MerecError(
            f"dataset name {name!r} is not usable; use letters, digits, '_', '.' or '-' only "
            "(it names folders and files)"
        )
    return name


def fold_id(subject: str) -> str:
    """File-system-safe fold id of a qualified subject: ``samm/006`` -> ``samm-006``."""
    fold = str(subject).replace("/", "-")
    if not is_safe_id(fold):
        raise MerecError(
            f"subject {subject!r} cannot name a fold; subject ids may use letters, digits, "
            "'_', '.', '-' and one '/' after the dataset name"
        )
    return fold


def sample_id(subject: str, clip: str) -> str:
    """Sample id convention: ``<fold>-<clip>``, e.g. ``samm-006-006_1_2``."""
    return f"{fold_id(subject)}-{clip}"


# ---------------------------------------------------------------------------------------------
# cells


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' missing markers."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cell_text(value: Any) -> str:
    """A cell as text: ``""`` when empty, ``6`` for a number pandas read as 6.0, else trimmed."""
    if is_missing(value):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
    return str(value).strip()


def identifier(value: Any) -> str:
    """A cell that names a folder or file: must be a plain, safe name (no path parts)."""
    text = cell_text(value)
    if not text:
        raise RowProblem("is empty")
    if not is_safe_id(text):
        raise RowProblem(
            f"{text!r} is not a plain name (only letters, digits, '_', '.', '-'; no path "
            "separators, '..' or absolute paths); it must name a folder inside the dataset root"
        )
    return text


def frame_number(value: Any) -> int:
    """A cell holding a frame number (int, integral float or digit text) as an int >= 0."""
    if is_missing(value) or cell_text(value) == "":
        raise RowProblem("is missing; write the frame number as it appears in the frame file names")
    if isinstance(value, bool):
        raise RowProblem(f"{value!r} is not a frame number")
    if isinstance(value, numbers.Real):
        number = float(value)
        if not (math.isfinite(number) and number.is_integer() and number >= 0):
            raise RowProblem(f"{value!r} is not a frame number (a whole number >= 0)")
        return int(number)
    text = str(value).strip()
    if text == "/":
        raise RowProblem("is '/' (not annotated); fill in the frame number or leave the row out")
    if not _FRAME_TEXT.fullmatch(text):
        raise RowProblem(f"{text!r} is not a frame number (a whole number >= 0)")
    return int(text.split(".")[0])


def read_cell(problems: list[str], column: str, value: Any, convert: Callable[[Any], Any]) -> Any:
    """``convert(value)``, or None after recording the problem under the column's name."""
    try:
        return convert(value)
    except (RowProblem, MerecError) as exc:
        problems.append(f"column '{column}' {exc}")
        return None


# ---------------------------------------------------------------------------------------------
# paths


def dataset_root(name: str, spec: Mapping[str, Any], layout: str, params_key: str) -> Path:
    """The dataset root (``spec['root']``, default ``data/raw/<name>``); error if missing."""
    root = Path(spec.get("root") or f"data/raw/{name}")
    if not root.is_dir():
        raise MerecError(
            f"dataset '{name}': folder {root} does not exist; put {layout} under {root}, "
            f"or set {params_key}.root in params.yaml"
        )
    return root


def annotation_file(name: str, spec: Mapping[str, Any], root: Path, default: str, params_key: str) -> Path:
    """The annotation file: ``spec['annotation']`` (a bare file name is looked up in the root,
    any other path is used as given), default the official file name inside the root."""
    given = spec.get("annotation")
    path = Path(given) if given else root / default
    if given and path.parent == Path("."):
        path = root / path
    if not path.is_file():
        raise MerecError(
            f"dataset '{name}': annotation file {path} is missing; put the official {default} "
            f"in {root}, or set {params_key}.annotation in params.yaml to where it is"
        )
    return path


def frames_base(name: str, spec: Mapping[str, Any], root: Path, default: str, params_key: str) -> Path:
    """Folder holding the subject folders: ``root / spec['frames']`` (default per format)."""
    sub = spec.get("frames", default)
    sub = "" if sub is None else str(sub)
    if Path(sub).is_absolute() or ".." in Path(sub).parts:
        raise MerecError(
            f"{params_key}.frames = {sub!r}: must be a folder inside the dataset root {root} "
            "(a relative path without '..')"
        )
    return root / sub if sub else root


def clip_folder(base: Path, *parts: str) -> Path:
    """``base/part/...`` after checking every part is a plain name and the result stays in base."""
    for part in parts:
        if not is_safe_id(part):
            raise RowProblem(f"folder name {part!r} is not a plain name inside the dataset root")
    folder = base.joinpath(*parts)
    inside = folder.resolve()
    if not inside.is_relative_to(base.resolve()):
        raise RowProblem(f"frame folder {folder} resolves to {inside}, outside the dataset root {base}")
    return folder


# ---------------------------------------------------------------------------------------------
# annotation tables


def read_records(
    path: Path,
    columns: Sequence[str],
    *,
    sheet: str | int = 0,
    header_row: int = 1,
) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a csv/xlsx annotation file as ``(excel_row, {official column: value})``.

    ``header_row`` is the 1-based row of the header as Excel shows it; column names are matched
    ignoring case and repeated white space; fully blank rows are dropped.
    """
    table = _read_table(path, sheet, header_row)
    found = {_column_key(column): column for column in table.columns}
    missing = [column for column in columns if _column_key(column) not in found]
    if missing:
        where = f"{path}" + (f" (sheet {sheet!r})" if isinstance(sheet, str) else "")
        shown = [str(column) for column in table.columns if not str(column).startswith("Unnamed")]
        raise MerecError(
            f"{where}: missing column(s) {', '.join(missing)} in the header on row {header_row}; "
            f"found: {', '.join(shown) or 'nothing'}. Use the official file, unchanged"
        )
    picked = table[[found[_column_key(column)] for column in columns]]
    picked.columns = list(columns)
    records = []
    for offset, values in enumerate(picked.itertuples(index=False, name=None)):
        if all(is_missing(value) or cell_text(value) == "" for value in values):
            continue
        records.append((header_row + 1 + offset, dict(zip(columns, values, strict=True))))
    return records


def _read_table(path: Path, sheet: str | int, header_row: int) -> pd.DataFrame:
    try:
        if path.suffix.lower() in {".csv", ".txt"}:
            return pd.read_csv(
                path,
                header=header_row - 1,
                dtype=object,
                skip_blank_lines=False,
                keep_default_na=True,
            )
        with pd.ExcelFile(path) as book:
            if isinstance(sheet, str) and sheet not in book.sheet_names:
                raise MerecError(
                    f"{path}: sheet {sheet!r} is missing; found sheets: "
                    f"{', '.join(book.sheet_names)}. Use the official file, unchanged"
                )
            return pd.read_excel(book, sheet_name=sheet, header=header_row - 1, dtype=object)
    except MerecError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        ImportError,
        zipfile.BadZipFile,
        pd.errors.ParserError,
    ) as exc:
        raise MerecError(f"{path}: cannot read this annotation file ({exc}); restore the original") from exc


def _column_key(column: Any) -> str:
    return " ".join(str(column).split()).casefold()


# ---------------------------------------------------------------------------------------------
# spreadsheet-based formats


@dataclass(frozen=True)
class SheetFormat:
    """A format whose annotation is one table with a row per clip (SAMM, CASME II, CAS(ME)³).

    Subclasses override :meth:`subject_id`, :meth:`folder_parts` and :meth:`clip_name` where the
    dataset differs; the frame folder is ``<root>/<frames>/<folder_parts(subject, clip)>``.
    """

    fmt: str
    annotation: str
    layout: str
    subject_col: str
    clip_col: str
    onset_col: str
    apex_col: str
    offset_col: str
    aus_col: str
    emotion_col: str
    sheet: str | int = 0
    header_row: int = 1
    frames: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns the adapter needs (others in the file are ignored)."""
        return (
            self.subject_col, self.clip_col, self.onset_col, self.apex_col, self.offset_col,
            self.aus_col, self.emotion_col,
        )  # fmt: skip

    def subject_id(self, value: Any) -> str:
        """Bare subject id (the dataset's own spelling) of a Subject cell."""
        return identifier(value)

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """Frame folder of a clip relative to the frames base."""
        return (subject, clip)

    def clip_name(self, clip: str, onset: int | None) -> str | None:
        """The clip part of the sample id (None when it cannot be formed)."""
        return clip

    def match_key(self, subject: Any, clip: Any) -> tuple[str, str]:
        """Key the MEGC2019 ground truth is matched on (raises RowProblem for a bad subject)."""
        return self.subject_id(subject).casefold(), cell_text(clip).casefold()

    def read(self, name: str, spec: Mapping[str, Any], params_key: str | None = None) -> list[Candidate]:
        """Candidates of every annotated row of the dataset at ``spec``."""
        params_key = params_key or f"datasets.{name}"
        root = dataset_root(name, spec, self.layout, params_key)
        path = annotation_file(name, spec, root, self.annotation, params_key)
        base = frames_base(name, spec, root, self.frames, params_key)
        sheet = self.sheet if path.suffix.lower() in {".xlsx", ".xlsm", ".xls"} else 0
        records = read_records(path, self.columns, sheet=sheet, header_row=self.header_row)
        if not records:
            raise MerecError(f"{path}: no annotation rows found; use the official file, unchanged")
        return [self.candidate(name, base, f"{path} row {row}", row, record) for row, record in records]

    def candidate(self, name: str, base: Path, where: str, row: int, record: Mapping[str, Any]) -> Candidate:
        """Parse one annotation row, recording every problem."""
        problems: list[str] = []
        subject = read_cell(problems, self.subject_col, record[self.subject_col], self.subject_id)
        clip = read_cell(problems, self.clip_col, record[self.clip_col], identifier)
        onset = read_cell(problems, self.onset_col, record[self.onset_col], frame_number)
        apex = read_cell(problems, self.apex_col, record[self.apex_col], frame_number)
        offset = read_cell(problems, self.offset_col, record[self.offset_col], frame_number)
        aus = read_cell(problems, self.aus_col, record[self.aus_col], canonical_aus)
        found = Candidate(
            where=where, row=row, onset=onset, apex=apex, offset=offset,
            emotion=cell_text(record[self.emotion_col]),
            action_units=cell_text(record[self.aus_col]), aus=aus or "", problems=problems,
        )  # fmt: skip
        if subject is not None and clip is not None:
            found.subject = f"{name}/{subject}"
            found.key = (subject.casefold(), clip.casefold())
            name_part = self.clip_name(clip, onset)
            found.sample = None if name_part is None else sample_id(found.subject, name_part)
            try:
                found.frames_dir = clip_folder(base, *self.folder_parts(subject, clip))
            except RowProblem as exc:
                problems.append(str(exc))
        return found


# ---------------------------------------------------------------------------------------------
# frames


def frame_number_of(stem: str) -> int | None:
    """Frame number of a file stem: its last digit run (``006_05562`` -> 5562, ``img46`` -> 46)."""
    match = _LAST_DIGITS.search(stem)
    return int(match.group(1)) if match else None


def list_frames(folder: str | os.PathLike[str]) -> dict[int, Path]:
    """Frame number -> image file (.jpg .jpeg .png .bmp) of a frame folder, sorted by number.

    Hidden files (such as macOS ``._img1.jpg``) and images without digits are ignored; two files
    with the same number are an error.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise MerecError(f"{directory}: frame folder is missing; check the dataset folder")
    frames: dict[int, Path] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            number = frame_number_of(path.stem)
            if number is None or not entry.is_file():
                continue
            if number in frames:
                first, second = sorted([frames[number].name, path.name])
                raise MerecError(
                    f"{directory}: frame files {first} and {second} both have frame number "
                    f"{number}; keep only one of them"
                )
            frames[number] = path
    return dict(sorted(frames.items()))


def clip_frame_paths(row: Any, first: int | None = None, last: int | None = None) -> list[Path]:
    """Frame files of a samples-table row from onset to offset inclusive (or ``first..last``)."""
    folder = Path(_field(row, "frames_dir"))
    start = int(_field(row, "onset") if first is None else first)
    stop = int(_field(row, "offset") if last is None else last)
    label = _sample_label(row)
    if start > stop:
        raise MerecError(f"{folder}{label}: first frame {start} is after last frame {stop}")
    frames = list_frames(folder)
    missing = [number for number in range(start, stop + 1) if number not in frames]
    if missing:
        raise MerecError(
            f"{folder}{label}: frame(s) {compact_numbers(missing)} are missing "
            f"(frames {start}-{stop} are needed); restore them from the original data"
        )
    return [frames[number] for number in range(start, stop + 1)]


def compact_numbers(numbers_: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers_)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _field(row: Any, name: str) -> Any:
    try:
        return row[name]
    except (KeyError, TypeError, IndexError):
        try:
            return getattr(row, name)
        except AttributeError:
            raise MerecError(f"sample row has no {name!r} field; pass a samples-table row") from None


def _sample_label(row: Any) -> str:
    try:
        return f" (sample {_field(row, 'sample')})"
    except MerecError:
        return ""


# ---------------------------------------------------------------------------------------------
# validation


def finalize(
    name: str,
    candidates: Iterable[Candidate],
    classify: Callable[[str], str | None],
    on_error: str = "fail",
) -> IngestResult:
    """Validate candidates into the samples table (see the module docstring)."""
    if on_error not in ON_ERROR:
        raise MerecError(f"on_error={on_error!r}; use one of: {', '.join(ON_ERROR)}")
    kept: list[Candidate] = []
    bad: list[Candidate] = []
    skipped: list[dict[str, Any]] = []
    for found in candidates:
        if _resolve_label(found, classify):
            skipped.append(_skip_record(name, found, f"{EXCLUDED}{found.emotion}"))
            continue
        _check_phases(found)
        if not found.problems:
            _check_frames(found)
        (bad if found.problems else kept).append(found)
    bad.extend(_pop_duplicates(kept))
    if bad and on_error == "fail":
        raise MerecError(_problem_report(name, bad))
    skipped.extend(_skip_record(name, found, " | ".join(found.problems)) for found in bad)
    skipped.extend(_dropped_folds(name, kept, bad))
    return IngestResult(_samples_table(name, kept, skipped), _skipped_table(skipped))


def _dropped_folds(name: str, kept: list[Candidate], bad: list[Candidate]) -> list[dict[str, Any]]:
    """Subjects that lost every row to on_error='skip': a warning and one report row each.

    Skipping must never change the fold set silently: such a subject's LOSO fold disappears, so it
    is logged as a warning and listed in the skipped table (``row`` empty, reason ``fold dropped:``).
    Subjects left out only by the label set are not listed here (their rows say ``label excluded``).
    """
    have = {found.subject for found in kept}
    lost: dict[str, list[str]] = defaultdict(list)
    for found in bad:
        if found.subject is not None and found.subject not in have:
            lost[found.subject].append(found.where)
    records = []
    for subject in sorted(lost):
        reason = (
            f"{FOLD_DROPPED}every usable row of subject {subject} was skipped ({len(lost[subject])} row(s), see "
            "their reasons); its LOSO fold is left out: fix those rows to keep it"
        )
        LOG.warning("dataset '%s': %s", name, reason)
        records.append({"dataset": name, "row": None, "subject": subject, "sample": None, "reason": reason})
    return records


def _resolve_label(found: Candidate, classify: Callable[[str], str | None]) -> bool:
    """Set ``found.label``; True when the label set excludes the emotion."""
    if found.label is not None:
        return False
    try:
        label = classify(found.emotion)
    except RowProblem as exc:
        found.problems.append(f"{exc}")
        return False
    if label is None:
        return True
    found.label = label
    return False


def _check_phases(found: Candidate) -> None:
    onset, apex, offset = found.onset, found.apex, found.offset
    if onset is None or apex is None or offset is None:
        return
    if onset > offset:
        found.problems.append(f"onset {onset} is after offset {offset}")
    elif not onset <= apex <= offset:
        found.problems.append(f"apex {apex} is outside [onset {onset}, offset {offset}]")


def _check_frames(found: Candidate) -> None:
    if found.frames_dir is None:
        return
    if not found.frames_dir.is_dir():
        found.problems.append(f"frame folder {found.frames_dir} is missing")
        return
    try:
        frames = list_frames(found.frames_dir)
    except MerecError as exc:
        found.problems.append(str(exc))
        return
    phases = {"onset": found.onset, "apex": found.apex, "offset": found.offset}
    missing = [f"{phase} {number}" for phase, number in phases.items() if number not in frames]
    if missing:
        have = f"frames {min(frames)}-{max(frames)}" if frames else "no frame files"
        found.problems.append(f"frame file(s) for {', '.join(missing)} missing in {found.frames_dir} (it has {have})")


def _pop_duplicates(kept: list[Candidate]) -> list[Candidate]:
    """Remove every candidate whose sample id is not unique; return them with a problem noted."""
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for found in kept:
        groups[str(found.sample)].append(found)
    dupes = [group for group in groups.values() if len(group) > 1]
    for group in dupes:
        places = ", ".join(found.where for found in group)
        for found in group:
            found.problems.append(f"sample id {found.sample} is used by more than one row ({places})")
    kept[:] = [found for found in kept if not found.problems]
    return [found for group in dupes for found in group]


def _problem_report(name: str, bad: list[Candidate]) -> str:
    lines = [
        f"dataset '{name}': {len(bad)} annotated clip(s) have problems; fix them in the "
        "annotation file or the data folder, or leave them out with on_error='skip' "
        "(params.yaml: ingest.on_error: skip):"
    ]
    for found in bad[:MAX_LISTED]:
        sample = f" (sample {found.sample})" if found.sample else ""
        if len(found.problems) == 1:
            lines.append(f"  - {found.where}{sample}: {found.problems[0]}")
        else:
            lines.append(f"  - {found.where}{sample}:")
            lines.extend(f"      * {problem}" for problem in found.problems)
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    return "\n".join(lines)


def _skip_record(name: str, found: Candidate, reason: str) -> dict[str, Any]:
    return {"dataset": name, "row": found.row, "subject": found.subject, "sample": found.sample, "reason": reason}


def _skipped_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(records, columns=SKIPPED_COLUMNS)
    table["row"] = table["row"].astype("Int64")
    return table


def _samples_table(name: str, kept: list[Candidate], skipped: list[dict[str, Any]]) -> pd.DataFrame:
    if not kept:
        raise MerecError(
            f"dataset '{name}': no usable samples ({len(skipped)} row(s) left out, e.g. "
            f"{skipped[0]['reason'] if skipped else 'no rows'}); check the annotation file "
            "and the label set"
        )
    table = pd.DataFrame(
        [
            {
                "dataset": name,
                "subject": found.subject,
                "fold": fold_id(str(found.subject)),
                "sample": found.sample,
                "frames_dir": str(found.frames_dir),
                "onset": found.onset,
                "apex": found.apex,
                "offset": found.offset,
                "emotion": found.emotion,
                "label": found.label,
                "aus": found.aus,
                "action_units": found.action_units,
            }
            for found in kept
        ],
        columns=SAMPLE_COLUMNS,
    )
    table[["onset", "apex", "offset"]] = table[["onset", "apex", "offset"]].astype("int64")
    table = table.sort_values(["subject", "sample"], kind="stable").reset_index(drop=True)
    _warn_single_sample_subjects(name, table)
    return table


def _warn_single_sample_subjects(name: str, table: pd.DataFrame) -> None:
    counts = Counter(table["subject"])
    lonely = sorted(subject for subject, count in counts.items() if count == 1)
    if lonely:
        samples = table.loc[table["subject"].isin(lonely), "sample"].tolist()
        LOG.warning(
            "dataset '%s': subject(s) with a single sample: %s (sample(s) %s); their LOSO folds test one clip, "
            "which pooled UF1/UAR handle, but per-fold scores of such folds are 0 or 1: check the annotation "
            "if you expected more clips of them",
            name, ", ".join(lonely), ", ".join(samples),
        )  # fmt: skip
