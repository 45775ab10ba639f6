"""CAS(ME)³ part C: ``CAS(ME)3_part_C_ME.xlsx`` (sheet ``mockCrimeME``), no apex column.

Columns ``sub, count, onset, offset, au, emotion`` (subjects and counts stored as numbers, AU
cells like ``R4,5`` with a full-width comma in one row); frames ``<root>/01/11/color/123.jpg``
(subject padded to two digits; an unpadded ``1`` folder is used where that is what exists),
30 fps. The apex is estimated by ingest (see :mod:`merec.datasets.apex`). Emotions are already
classes: negative, positive, surprise, others. Sample ids: ``<name>-01-11``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from merec.datasets.cells import subject_number
from merec.datasets.sheets import SheetFormat

ANNOTATION = "CAS(ME)3_part_C_ME.xlsx"


@dataclass(frozen=True)
class Casme3cFormat(SheetFormat):
    """Part C's table: numeric subjects, one folder per counted clip."""

    def subject_id(self, value: Any) -> str:
        """``1``, ``1.0`` or ``"01"`` -> ``"01"``."""
        return subject_number(value, 2, "1 or 01")

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """``01/11/color``."""
        return (subject, clip, "color")

    def folder_variants(self, subject: str, clip: str, onset: int | None, emotion: str) -> tuple[tuple[str, ...], ...]:
        """The unpadded subject folder too (``1/11/color``)."""
        return ((str(int(subject)), clip, "color"),)


FORMAT = Casme3cFormat(
    fmt="casme3c",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} and the frame folders 01/11/color/123.jpg",
    subject_col="sub",
    clip_col="count",
    onset_col="onset",
    apex_col=None,
    offset_col="offset",
    aus_col="au",
    emotion_col="emotion",
    fps=30.0,
    max_duration_s=2.0,  # the official file's longest clip: 35 frames (1.2 s)
    sheet="mockCrimeME",
)
read = FORMAT.read
match_key = FORMAT.match_key
