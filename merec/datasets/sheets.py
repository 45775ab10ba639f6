"""Annotation spreadsheets: reading csv/xlsx tables, and the formats with one row per clip."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.aus import canonical_aus
from merec.datasets.cells import RowProblem, cell_text, frame_number, identifier, is_missing, read_cell
from merec.datasets.ids import sample_id
from merec.datasets.locations import annotation_file, clip_folder, dataset_root, frames_base
from merec.datasets.validation import Candidate
from merec.errors import MerecError


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
