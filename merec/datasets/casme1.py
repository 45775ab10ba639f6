"""CASME (I): ``CASME.xlsx`` (``casme.xlsx``, the name public loaders use, is read too).

Columns ``Subject, Filename, OnsetF, ApexF1, ApexF2, OffsetF, Emotion`` and, where the copy
has it, ``Action Units`` (ApexF1 is the apex; ApexF2, a second apex of some clips, is not used); frames
``<root>/CASME_raw_selected/sub01/<Filename>/``, 60 fps; subjects stored as numbers (``1`` ->
``sub01``). Sample ids: ``<name>-01-<Filename>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from merec.datasets.cells import subject_number
from merec.datasets.sheets import SheetFormat

ANNOTATION = "CASME.xlsx"
FRAMES = "CASME_raw_selected"


@dataclass(frozen=True)
class Casme1Format(SheetFormat):
    """CASME's table: two-digit subjects, frame folders ``subNN/<Filename>``."""

    def subject_id(self, value: Any) -> str:
        """``1``, ``"01"`` or ``"sub01"`` -> ``"01"``."""
        return subject_number(value, 2, "1 or 01", prefix="sub")

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """``sub01/EP01_5``."""
        return (f"sub{subject}", clip)


FORMAT = Casme1Format(
    fmt="casme",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} and the frame folders {FRAMES}/sub01/<Filename>/",
    subject_col="Subject",
    clip_col="Filename",
    onset_col="OnsetF",
    apex_col="ApexF1",
    offset_col="OffsetF",
    aus_col="Action Units",
    emotion_col="Emotion",
    fps=60.0,
    frames=FRAMES,
    alternatives=("casme.xlsx",),
    optional=("Action Units",),  # not in every copy; without it the clips have no AUs
)
read = FORMAT.read
match_key = FORMAT.match_key
