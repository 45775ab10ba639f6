"""CAS(ME)³ part A: ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (or a csv with its columns).

Columns ``Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion``; frames are
``<root>/spNO.1/a/color/123.jpg`` (spec key ``frames``: sub-folder of the root holding the subject
folders, default the root). Onset/apex/offset index the frames of the whole recorded task, and
one task (``Filename``) holds several micro-expressions, so the onset is part of the sample id:
``<name>-spNO.1-a-123``.
"""

from __future__ import annotations

from dataclasses import dataclass

from merec.datasets.sheets import SheetFormat

ANNOTATION = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"


@dataclass(frozen=True)
class Casme3Format(SheetFormat):
    """CAS(ME)³'s table: frames in ``<Subject>/<Filename>/color``, several clips per task."""

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """``spNO.1/a/color``."""
        return (subject, clip, "color")

    def clip_name(self, clip: str, onset: int | None) -> str | None:
        """``a-123``: the task and the onset frame."""
        return None if onset is None else f"{clip}-{onset}"


FORMAT = Casme3Format(
    fmt="casme3",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} (or a csv with its columns) and the frame folders spNO.1/a/color/123.jpg",
    subject_col="Subject",
    clip_col="Filename",
    onset_col="Onset",
    apex_col="Apex",
    offset_col="Offset",
    aus_col="AU",
    emotion_col="emotion",
)
read = FORMAT.read
match_key = FORMAT.match_key
