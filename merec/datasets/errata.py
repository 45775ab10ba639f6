"""Errata: known errors of official annotation releases, corrected on the user's behalf.

An :class:`Erratum` names a row by the cells that identify it (subject, clip and, where one clip
holds several expressions, the onset), the column that is wrong, the value the release has and
the corrected value, with the source of the correction. With ``ingest.errata: official`` (the
default) each format's list is applied to the rows as read, before they are parsed; every change
is recorded and ends up in ``corrections.csv``. An erratum whose row or old value is not found
(the user holds a version already corrected) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from merec.datasets.cells import cell_text


@dataclass(frozen=True)
class Erratum:
    """One correction: in the row whose cells match ``row``, ``column`` goes from ``old`` to ``new``.

    ``column`` None removes the row instead (a clip the release itself says to leave out); it
    is then listed in ``skipped.csv`` with the source as the reason.
    """

    row: tuple[tuple[str, str], ...]
    column: str | None
    old: str
    new: str
    source: str

    def matches(self, record: Mapping[str, Any]) -> bool:
        """True when ``record`` is this erratum's row and still holds the old value."""
        if not all(_same(record.get(column), text) for column, text in self.row):
            return False
        return self.column is None or _same(record.get(self.column), self.old)


def erratum(source: str, column: str, old: Any, new: Any, **row: Any) -> Erratum:
    """``erratum(SOURCE, "Offset", 3460, 34, Subject="spNO.214", Filename="c", Onset=5)``."""
    return Erratum(_row(row), column, str(old), str(new), source)


def removal(source: str, **row: Any) -> Erratum:
    """``removal(SOURCE, Subject="spNO.2", Filename="e", Onset=138)``: leave the row out."""
    return Erratum(_row(row), None, "", "", source)


def apply_errata(record: dict[str, Any], errata: Iterable[Erratum]) -> tuple[list[dict[str, str]], str | None]:
    """Correct ``record`` in place: the corrections made (field, old, new, source) and, when an
    erratum removes the row, its source (else None). Errata match the row as released."""
    released = dict(record)
    made: list[dict[str, str]] = []
    for fix in errata:
        if not fix.matches(released):
            continue
        if fix.column is None:
            return [], fix.source
        made.append({"field": fix.column, "old": cell_text(released[fix.column]), "new": fix.new, "source": fix.source})
        record[fix.column] = fix.new
    return made, None


def check_errata(errata: Sequence[Erratum], columns: Sequence[str]) -> None:
    """Every erratum names columns the format reads (a programming error otherwise)."""
    for fix in errata:
        named = {column for column, _ in fix.row} | ({fix.column} if fix.column else set())
        unknown = named - set(columns)
        if unknown:
            raise ValueError(f"erratum {fix} names columns the format does not read: {sorted(unknown)}")


def _row(cells: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((column, str(value)) for column, value in cells.items())


def _same(value: Any, text: str) -> bool:
    return cell_text(value).casefold() == text.casefold()
