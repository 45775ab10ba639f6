"""SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` (sheet ``MICRO_ONLY``, header on Excel row 14).

Subject is stored as a number (6) and names the folder ``006``; frames are
``<root>/006/006_1_2/006_05562.jpg`` (spec key ``frames`` moves the subject folders below a
sub-folder of the root; default: the root itself). Sample ids: ``<name>-006-006_1_2``.
The synthetic generator :mod:`merec.synth` writes exactly this layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from merec.datasets.cells import subject_number
from merec.datasets.sheets import SheetFormat

ANNOTATION = "SAMM_Micro_FACS_Codes_v2.xlsx"


@dataclass(frozen=True)
class SammFormat(SheetFormat):
    """SAMM's spreadsheet: numeric subjects padded to three digits."""

    def subject_id(self, value: Any) -> str:
        """``6``, ``6.0`` or ``"006"`` -> ``"006"``."""
        return subject_number(value, 3, "6 or 006")


FORMAT = SammFormat(
    fmt="samm",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} and the frame folders 006/006_1_2/006_05562.jpg",
    subject_col="Subject",
    clip_col="Filename",
    onset_col="Onset Frame",
    apex_col="Apex Frame",
    offset_col="Offset Frame",
    aus_col="Action Units",
    emotion_col="Estimated Emotion",
    fps=200.0,
    sheet="MICRO_ONLY",
    header_row=14,
)
read = FORMAT.read
match_key = FORMAT.match_key
