"""CASME II: ``CASME2-coding-20140508.xlsx`` (header on row 1, blank columns C and G).

Subject is stored as ``"01"`` and names the folder ``sub01``; frames are
``<root>/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``, as the official archive unpacks. Spec key
``frames`` names the sub-folder that holds the ``subNN`` folders (default
``CASME2_RAW_selected``; e.g. ``Cropped`` for the cropped release, whose ``reg_img46.jpg`` names
work too, or ``""`` for the root itself). Sample ids: ``<name>-01-EP02_01f``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from merec.datasets.cells import subject_number
from merec.datasets.sheets import SheetFormat

ANNOTATION = "CASME2-coding-20140508.xlsx"
#: Other names the CASME II annotation is distributed under (same columns), looked for in this order.
ALTERNATIVES = ("CASME2-coding-20190701.xlsx", "CASME2-coding-updated.xlsx", "CASME2_label_Ver_2.xls")
FRAMES = "CASME2_RAW_selected"


@dataclass(frozen=True)
class Casme2Format(SheetFormat):
    """CASME II's spreadsheet: two-digit subjects, frame folders ``subNN/<Filename>``."""

    def subject_id(self, value: Any) -> str:
        """``"01"``, ``1``, ``1.0`` or ``"sub01"`` -> ``"01"``."""
        return subject_number(value, 2, "01", prefix="sub")

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """``sub01/EP02_01f``."""
        return (f"sub{subject}", clip)


FORMAT = Casme2Format(
    fmt="casme2",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} and the frame folders {FRAMES}/sub01/EP02_01f/img46.jpg",
    subject_col="Subject",
    clip_col="Filename",
    onset_col="OnsetFrame",
    apex_col="ApexFrame",
    offset_col="OffsetFrame",
    aus_col="Action Units",
    emotion_col="Estimated Emotion",
    fps=200.0,
    frames=FRAMES,
    alternatives=ALTERNATIVES,
)
read = FORMAT.read
match_key = FORMAT.match_key
