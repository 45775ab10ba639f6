"""MMEW: ``MMEW_Micro_Exp.xlsx``; frames in one folder per emotion.

Columns ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion,
remarks``; frames ``<root>/Micro_Expression/<emotion>/<Filename>/1.jpg`` (the folder of the row's
emotion, names matched ignoring case), 90 fps. Sample ids: ``<name>-<Subject>-<Filename>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from merec.datasets.locations import clip_folder
from merec.datasets.sheets import SheetFormat

ANNOTATION = "MMEW_Micro_Exp.xlsx"
FRAMES = "Micro_Expression"
FOLDER_ALIASES = {"others": "repression", "repression": "others"}  # unverified which one releases use


@dataclass(frozen=True)
class MmewFormat(SheetFormat):
    """MMEW's table: the frame folder is chosen by the row's emotion."""

    def clip_folder_of(self, base: Path, subject: str, clip: str, onset: int | None, emotion: str) -> Path:
        """``Micro_Expression/<emotion>/<Filename>`` (the emotion as written, any case); rows of
        ``others`` also look in a ``repression`` folder, the name public loaders give that class."""
        first = clip_folder(base, emotion.strip() or "_", clip)
        other = FOLDER_ALIASES.get(emotion.strip().casefold())
        if not first.is_dir() and other is not None and clip_folder(base, other, clip).is_dir():
            return clip_folder(base, other, clip)
        return first


FORMAT = MmewFormat(
    fmt="mmew",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} and the frame folders {FRAMES}/<emotion>/<Filename>/1.jpg",
    subject_col="Subject",
    clip_col="Filename",
    onset_col="OnsetFrame",
    apex_col="ApexFrame",
    offset_col="OffsetFrame",
    aus_col="Action Units",
    emotion_col="Estimated Emotion",
    fps=90.0,
    frames=FRAMES,
)
read = FORMAT.read
match_key = FORMAT.match_key
