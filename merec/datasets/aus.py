"""Action-unit strings as the annotation files write them.

AU numbers are the digit runs of the text; the letters around them are marks that carry no AU
identity: side (``L``/``R``, ``U`` unilateral), intensity (``A``-``E``), CAS(ME)³'s ``T`` prefix
(``T18``, ``24+T18+16``) or an ``AU`` prefix. Separators are ``+``, ``,`` (also the full-width
``，`` of CAS(ME)³ part C), ``;``, ``/``, ``&`` and white space; ``?``, ``*`` and brackets mark
uncertain codes and are ignored. A coder's alternatives (SAMM's ``R12 or R14``,
``(R6 or R12)+R15``) keep every AU named; the coder's notes in SAMM (``ref(43)``, ``soft focus``) and 4DME's ``(k)``
mark are ignored, the AUs they qualify kept. Examples: ``R12+L14`` -> [12, 14], ``1+2+5B`` ->
[1, 2, 5], ``AU4+AU7`` -> [4, 7], ``12, 14`` -> [12, 14], ``4.0`` (a cell pandas read as a
number) -> [4].
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from typing import Any

from merec.errors import MerecError

MAX_AU = 99  # FACS codes are at most two digits; a longer run means a missing separator
PLACEHOLDERS = frozenset({"", "/", "?", "-", "none", "n/a", "na", "nan", "null"})
_DECIMAL = re.compile(r"(?<![0-9.])([0-9]+)\.0+(?![0-9.])")  # "4.0" -> "4"
_ALLOWED = re.compile(r"[0-9ABCDELRTU+,;/&?*()\[\]\s]*")
_ALTERNATIVE = re.compile(r"(?<![A-Za-z])or(?![A-Za-z])", re.IGNORECASE)  # "R12 or R14"
_NOTE = re.compile(r"(?<![A-Za-z])(?:ref|soft|focus)(?![A-Za-z])|\(k\)", re.IGNORECASE)  # coder notes
_DIGITS = re.compile(r"[0-9]+")


def parse_aus(text: Any) -> list[int]:
    """Sorted unique AU numbers of an annotation cell; ``[]`` for an empty or placeholder cell."""
    if text is None:
        return []
    if isinstance(text, bool):
        raise MerecError(f"action units {text!r}: a yes/no value is not an AU code")
    if isinstance(text, numbers.Integral):
        return _checked([int(text)], text)
    if isinstance(text, numbers.Real):
        value = float(text)
        if math.isnan(value):
            return []
        if not value.is_integer():
            raise MerecError(f"action units {text!r}: not an AU number; write AU codes like 4+7")
        return _checked([int(value)], text)
    if not isinstance(text, str):
        if _is_missing(text):
            return []
        raise MerecError(f"action units {text!r}: expected text like 4+7, got {type(text).__name__}")
    cleaned = text.strip()
    if cleaned.casefold() in PLACEHOLDERS:
        return []
    cleaned = _NOTE.sub(" ", _ALTERNATIVE.sub("+", cleaned.replace("，", ",")))
    cleaned = _DECIMAL.sub(r"\1", cleaned).upper()
    if not _ALLOWED.fullmatch(cleaned):
        raise MerecError(
            f"action units {text!r}: unexpected characters; AU strings look like 4+7, R12+L14, "
            "1+2+5B or AU4+AU7 (digits are AU numbers; letters L/R/U/A-E are side or "
            "intensity marks)"
        )
    found = [int(run) for run in _DIGITS.findall(cleaned)]
    if not found and cleaned.strip("?*()[] \t\n/+,;&"):
        raise MerecError(f"action units {text!r}: no AU number found; write AU codes like 4+7")
    return _checked(found, text)


def format_aus(aus: Iterable[int]) -> str:
    """Canonical AU string: sorted unique numbers joined by ``+`` (``""`` when there are none)."""
    return "+".join(str(number) for number in sorted(set(aus)))


def canonical_aus(text: Any) -> str:
    """``format_aus(parse_aus(text))``: the canonical form of an annotation cell."""
    return format_aus(parse_aus(text))


def _checked(numbers_found: list[int], text: Any) -> list[int]:
    for number in numbers_found:
        if not 0 <= number <= MAX_AU:
            raise MerecError(
                f"action units {text!r}: {number} is not an AU number (0-{MAX_AU}); separate AU codes with '+'"
            )
    return sorted(set(numbers_found))


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
