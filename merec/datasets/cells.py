"""Annotation cells: text, frame numbers and folder names read from a spreadsheet cell."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from merec.datasets.ids import is_safe_id
from merec.errors import MerecError

_FRAME_TEXT = re.compile(r"[0-9]+(?:\.0*)?")


class RowProblem(Exception):
    """A problem with one annotation row: collected, then raised or skipped by :func:`finalize`."""


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


def subject_number(value: Any, digits: int, example: str, prefix: str = "") -> str:
    """A numeric Subject cell (``6``, ``6.0``, ``"006"``, or ``"<prefix>06"``) zero-padded to ``digits``."""
    text = cell_text(value)
    bare = text[len(prefix) :] if prefix and text.casefold().startswith(prefix) else text
    if not (bare.isascii() and bare.isdigit()):
        raise RowProblem(f"{text!r} is not a subject number (like {example})")
    return f"{int(bare):0{digits}d}"


MISSING_FRAME = frozenset({"", "/", "-1", "-", "n/a", "na", "none", "?"})


def missing_frame_text(value: Any) -> str | None:
    """What stands in a frame cell that is not annotated (``/``, ``-1``, empty), or None.

    Empty cells come back as ``"empty"`` so the record says what was found.
    """
    text = cell_text(value)
    if text.casefold() in MISSING_FRAME:
        return text or "empty"
    return None


def read_cell(problems: list[str], column: str, value: Any, convert: Callable[[Any], Any]) -> Any:
    """``convert(value)``, or None after recording the problem under the column's name."""
    try:
        return convert(value)
    except (RowProblem, MerecError) as exc:
        problems.append(f"column '{column}' {exc}")
        return None
