"""Annotation spreadsheets: reading csv/xlsx tables, and the formats with one row per clip."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.aus import canonical_aus
from merec.datasets.cells import (
    RowProblem,
    cell_text,
    frame_number,
    identifier,
    is_missing,
    missing_frame_text,
    read_cell,
)
from merec.datasets.errata import Erratum, apply_errata, check_errata
from merec.datasets.ids import sample_id
from merec.datasets.locations import annotation_file, clip_folder, damaged_frames, dataset_root, frames_base
from merec.datasets.validation import LOG, Candidate
from merec.errors import MerecError

HEADER_SEARCH_ROWS = 30  # rows searched for the header (SAMM copies have it on row 1 or row 14)
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})


def read_records(
    path: Path,
    columns: Sequence[str],
    *,
    sheet: str | int = 0,
    header_row: int = 1,
    headerless: bool = False,
    optional: Sequence[str] = (),
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a csv/xlsx/xls annotation file as ``(excel_row, {official column: value})``.

    The header is the first row, within the first :data:`HEADER_SEARCH_ROWS`, that holds every
    one of ``columns`` (``header_row``, the 1-based row where the official file has it, is tried
    first); names are matched ignoring case and repeated white space. In a workbook the sheet
    ``sheet`` is read when it exists, else the first sheet with such a header. With
    ``headerless`` a file without a header row is read positionally (its first columns in the
    order of ``columns``), as the MEGC2019 ground truth is released. ``optional`` columns are
    read when the header has them (records lack them otherwise). ``aliases`` maps a column to
    other spellings copies of the file use (the record is keyed by the column's own name). Blank
    rows are dropped.
    """
    spell = _Spellings(aliases or {})
    sheets = _read_sheets(path, sheet)
    found = [(name, table, _find_header(table, columns, header_row, spell)) for name, table in sheets]
    name, table, header = next((item for item in found if item[2] is not None), found[0])
    if header is None:
        if headerless and table.shape[1] >= len(columns) and _overlap(table, columns, spell)[1] == 0:
            return _records(table.iloc[:, : len(columns)], list(columns), first_row=1)
        where = f"{path}" + (f" (sheet {name!r})" if name is not None else "")
        row, _ = _overlap(table, columns, spell)
        have = {_column_key(cell) for cell in table.iloc[row]} if len(table) else set()
        missing = [spell.shown(column) for column in columns if spell.position(column, list(have)) is None]
        shown = ", ".join(text for text in (cell_text(cell) for cell in table.iloc[row]) if text) if len(table) else ""
        raise MerecError(
            f"{where}: missing column(s) {', '.join(missing)} in the header on row {row + 1} (the row, within the "
            f"first {HEADER_SEARCH_ROWS}, closest to a header); found: {shown or 'nothing'}. "
            "Use the official file, unchanged"
        )
    if name is not None and isinstance(sheet, str) and name != sheet:
        LOG.info("%s: no sheet %r; reading sheet %r, which has the expected columns", path, sheet, name)
    names = [_column_key(cell) for cell in table.iloc[header]]
    present = [*columns, *(column for column in optional if spell.position(column, names) is not None)]
    positions = [spell.position(column, names) for column in present]
    picked = table.iloc[header + 1 :, positions]
    return _records(picked, present, first_row=header + 2)


def _records(table: pd.DataFrame, columns: list[str], first_row: int) -> list[tuple[int, dict[str, Any]]]:
    records = []
    for offset, values in enumerate(table.itertuples(index=False, name=None)):
        if all(is_missing(value) or cell_text(value) == "" for value in values):
            continue
        records.append((first_row + offset, dict(zip(columns, values, strict=True))))
    return records


class _Spellings:
    """The spellings a column goes by: its own name and its aliases, compared as header keys."""

    def __init__(self, aliases: Mapping[str, Sequence[str]]) -> None:
        self.aliases = aliases

    def keys(self, column: str) -> list[str]:
        return [_column_key(name) for name in (column, *self.aliases.get(column, ()))]

    def position(self, column: str, names: list[str]) -> int | None:
        """Index in ``names`` (header keys) of the column's first spelling found, else None."""
        return next((names.index(key) for key in self.keys(column) if key in names), None)

    def shown(self, column: str) -> str:
        others = self.aliases.get(column, ())
        return column + (f" (or {' / '.join(others)})" if others else "")


def _overlap(table: pd.DataFrame, columns: Sequence[str], spell: _Spellings) -> tuple[int, int]:
    """The row (0-based, within the search rows) holding most of ``columns``, and how many it holds."""
    best = (0, 0)
    for row in range(min(HEADER_SEARCH_ROWS, len(table))):
        names = [_column_key(cell) for cell in table.iloc[row]]
        count = sum(spell.position(column, names) is not None for column in columns)
        if count > best[1]:
            best = (row, count)
    return best


def _find_header(table: pd.DataFrame, columns: Sequence[str], header_row: int, spell: _Spellings) -> int | None:
    rows = [header_row - 1] + [r for r in range(min(HEADER_SEARCH_ROWS, len(table))) if r != header_row - 1]
    for row in rows:
        if 0 <= row < len(table):
            names = [_column_key(cell) for cell in table.iloc[row]]
            if all(spell.position(column, names) is not None for column in columns):
                return row
    return None


def _read_sheets(path: Path, sheet: str | int) -> list[tuple[str | None, pd.DataFrame]]:
    """The tables of the file without header interpretation, the preferred sheet first."""
    try:
        if path.suffix.lower() not in EXCEL_SUFFIXES:
            table = pd.read_csv(path, header=None, dtype=object, skip_blank_lines=False, keep_default_na=True)
            return [(None, table)]
        with pd.ExcelFile(path, engine="calamine") as book:  # xlsx and xls alike
            names = [str(name) for name in book.sheet_names]
            index = sheet if isinstance(sheet, int) else 0
            first = sheet if isinstance(sheet, str) and sheet in names else names[index]
            order = [first] + [name for name in names if name != first]
            return [(name, pd.read_excel(book, sheet_name=name, header=None, dtype=object)) for name in order]
    except MerecError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        IndexError,
        ImportError,
        zipfile.BadZipFile,
        pd.errors.ParserError,
    ) as exc:
        raise MerecError(f"{path}: cannot read this annotation file ({exc}); restore the original") from exc


def _column_key(column: Any) -> str:
    return " ".join(cell_text(column).split()).casefold()


@dataclass(frozen=True)
class SheetFormat:
    """A format whose annotation is one table with a row per clip (SAMM, CASME II, CAS(ME)³ ...).

    Subclasses override :meth:`subject_id`, :meth:`folder_parts` and :meth:`clip_name` where the
    dataset differs; the frame folder is ``<root>/<frames>/<folder_parts(subject, clip)>``.
    ``annotation`` is the official file name and ``alternatives`` other names it is released
    under (looked for in this order); ``apex_col`` None means the dataset has no apex (it is
    estimated); ``fps`` is the frame rate and ``max_duration_s`` the longest onset-to-offset span
    a clip of the dataset can have (longer is a typo); ``errata`` the official corrections;
    ``aliases`` other spellings of a column that copies of the file use.
    """

    fmt: str
    annotation: str
    layout: str
    subject_col: str
    clip_col: str
    onset_col: str
    apex_col: str | None
    offset_col: str
    aus_col: str
    emotion_col: str
    fps: float
    max_duration_s: float = 1.0
    sheet: str | int = 0
    header_row: int = 1
    frames: str = ""
    alternatives: tuple[str, ...] = ()
    errata: tuple[Erratum, ...] = ()
    optional: tuple[str, ...] = ()
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (column, other spellings in copies of the file)

    def __post_init__(self) -> None:
        check_errata(self.errata, (*self.columns, *self.optional))

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns the adapter needs (others in the file are ignored; ``optional`` ones may be absent)."""
        named = (
            self.subject_col, self.clip_col, self.onset_col, self.apex_col, self.offset_col,
            self.aus_col, self.emotion_col,
        )  # fmt: skip
        return tuple(column for column in named if column is not None and column not in self.optional)

    def subject_id(self, value: Any) -> str:
        """Bare subject id (the dataset's own spelling) of a Subject cell."""
        return identifier(value)

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """Frame folder of a clip relative to the frames base."""
        return (subject, clip)

    def folder_variants(self, subject: str, clip: str, onset: int | None, emotion: str) -> tuple[tuple[str, ...], ...]:
        """Other places a release may put the clip's frames (tried when the first is absent)."""
        return ()

    def clip_folder_of(self, base: Path, subject: str, clip: str, onset: int | None, emotion: str) -> Path:
        """The clip's frame folder: :meth:`folder_parts`, else the first of :meth:`folder_variants`
        that exists (names matched ignoring case)."""
        first = clip_folder(base, *self.folder_parts(subject, clip))
        if not first.is_dir():
            for parts in self.folder_variants(subject, clip, onset, emotion):
                other = clip_folder(base, *parts)
                if other.is_dir():
                    return other
        return first

    def clip_name(self, clip: str, onset: int | None) -> str | None:
        """The clip part of the sample id (None when it cannot be formed)."""
        return clip

    def match_key(self, subject: Any, clip: Any) -> tuple[str, str]:
        """Key the MEGC2019 ground truth is matched on (raises RowProblem for a bad subject)."""
        return self.subject_id(subject).casefold(), cell_text(clip).casefold()

    def read(
        self, name: str, spec: Mapping[str, Any], params_key: str | None = None, *, errata: bool = True
    ) -> list[Candidate]:
        """Candidates of every annotated row of the dataset at ``spec`` (official errata applied
        unless ``errata`` is False)."""
        params_key = params_key or f"datasets.{name}"
        root = dataset_root(name, spec, self.layout, params_key)
        path = annotation_file(name, spec, root, (self.annotation, *self.alternatives), params_key)
        base = frames_base(name, spec, root, self.frames, params_key)
        sheet = self.sheet if path.suffix.lower() in EXCEL_SUFFIXES else 0
        records = read_records(
            path,
            self.columns,
            sheet=sheet,
            header_row=self.header_row,
            optional=self.optional,
            aliases=dict(self.aliases),
        )
        if not records:
            raise MerecError(f"{path}: no annotation rows found; use the official file, unchanged")
        fps = float(spec.get("fps") or self.fps)
        damaged = damaged_frames(spec, root, base, params_key, self.folder_parts)
        found = []
        for row, record in records:
            fixes, removed = apply_errata(record, self.errata if errata else ())
            candidate = self.candidate(name, base, f"{path} row {row}", row, record)
            candidate.fps = fps
            candidate.max_duration_s = self.max_duration_s
            candidate.removed = removed
            candidate.corrections.extend(fixes)
            if candidate.frames_dir is not None:
                candidate.damaged = damaged.get(candidate.frames_dir, frozenset())
            found.append(candidate)
        return found

    def candidate(self, name: str, base: Path, where: str, row: int, record: Mapping[str, Any]) -> Candidate:
        """Parse one annotation row, recording every problem."""
        problems: list[str] = []
        subject = read_cell(problems, self.subject_col, record[self.subject_col], self.subject_id)
        clip = read_cell(problems, self.clip_col, record[self.clip_col], identifier)
        onset = read_cell(problems, self.onset_col, record[self.onset_col], frame_number)
        offset = read_cell(problems, self.offset_col, record[self.offset_col], frame_number)
        apex_cell = record[self.apex_col] if self.apex_col else None
        apex_missing = missing_frame_text(apex_cell) if self.apex_col else "no apex in this dataset"
        apex = None
        if apex_missing is None:
            apex = read_cell(problems, str(self.apex_col), apex_cell, frame_number)
        aus = read_cell(problems, self.aus_col, record.get(self.aus_col), canonical_aus)
        found = Candidate(
            where=where, row=row, onset=onset, apex=apex, offset=offset,
            emotion=cell_text(record[self.emotion_col]),
            action_units=cell_text(record.get(self.aus_col)), aus=aus or "", problems=problems,
            apex_missing=apex_missing, apex_required=self.apex_col is not None,
        )  # fmt: skip
        if subject is not None and clip is not None:
            found.subject = f"{name}/{subject}"
            found.key = (subject.casefold(), clip.casefold())
            name_part = self.clip_name(clip, onset)
            found.sample = None if name_part is None else sample_id(found.subject, name_part)
            try:
                found.frames_dir = self.clip_folder_of(base, subject, clip, onset, found.emotion)
            except RowProblem as exc:
                problems.append(str(exc))
        return found
