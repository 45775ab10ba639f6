"""CAS(ME)³ part A: ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (or a csv with its columns).

Columns ``Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion`` (sheet
``label``; every cell stored as text in the official file); frames are
``<root>/spNO.1/a/color/123.jpg`` (spec key ``frames``: sub-folder of the root holding the
subject folders, default the root), 30 fps, or, in the release with one folder per clip,
``<root>/Part_A_ME_clip/frame/spNO.1_a_355/355.jpg`` (folder names matched ignoring case).
Onset/apex/offset index the frames of the whole recorded task, and one task (``Filename``)
holds several micro-expressions, so the onset is part of the sample id: ``<name>-spNO.1-a-123``.

The official errata (:data:`ERRATA`, applied with ``ingest.errata: official``) come from the
release repository's ``exception/`` and ``annotation/partA/`` files and from tvaranka/meb. The
release's frame drops (about 10% of clips miss frames between onset and offset) are filled by
``ingest.frame_gaps``; its damaged-image list can be given as ``damaged_frames``.
"""

from __future__ import annotations

from dataclasses import dataclass

from merec.datasets.errata import erratum, removal
from merec.datasets.sheets import SheetFormat

ANNOTATION = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"

_ZHOUJU = "CAS(ME)3 release, exception/casme3_partA_error_list_ZhouJu.xlsx"
_V2XLS = "CAS(ME)3 release, CAS(ME)3_part_A_v2.xls (the full annotation)"
_OCCLUDED = f"{_ZHOUJU}: apex face occluded (hand, chin or brows covered), the release removes the clip"
_APEX_DISPUTED = (
    "apex 83 before onset 112; the release's files disagree (v2.xls 160, V1 error list 167; meb uses 123): "
    "left to ingest.missing_apex"
)
_OCCLUDED_ROWS = (
    ("spNO.2", "e", 138), ("spNO.145", "g", 150), ("spNO.146", "a", 530), ("spNO.147", "d", 1146),
    ("spNO.147", "e", 1058), ("spNO.155", "d", 5), ("spNO.179", "b", 7), ("spNO.200", "b", 518),
    ("spNO.204", "a", 606), ("spNO.206", "a", 10), ("spNO.206", "c", 69), ("spNO.214", "b", 5),
    ("spNO.214", "k", 4), ("spNO.215", "f", 5), ("spNO.215", "f", 2183),
)  # fmt: skip
_TYPO = "tvaranka/meb: offset 3460 is a typo for 34"
#: Known errors of the official part A labels, matched on the row's cells as released.
ERRATA = (
    erratum(_APEX_DISPUTED, "Apex", 83, "/", Subject="spNO.149", Filename="d", Onset=112),
    erratum(_TYPO, "Offset", 3460, 34, Subject="spNO.214", Filename="c", Onset=5),
    erratum(_V2XLS, "Onset", 3647, 2647, Subject="spNO.216", Filename="d", Offset=2694),
    erratum(f"{_ZHOUJU}: frame 0 does not exist, onset +1", "Onset", 0, 1, Subject="spNO.216", Filename="e", Offset=25),
    erratum(f"{_ZHOUJU}: frame 0 does not exist, apex +1", "Apex", 0, 1, Subject="spNO.216", Filename="e", Offset=25),
    erratum(_V2XLS, "Offset", 0, 1845, Subject="spNO.40", Filename="e", Onset=1812),
    erratum(_V2XLS, "Offset", 0, 2403, Subject="spNO.40", Filename="e", Onset=2327),
    *(removal(_OCCLUDED, Subject=subject, Filename=clip, Onset=onset) for subject, clip, onset in _OCCLUDED_ROWS),
)
#: The official labels, errata applied, hold 273 clips longer than 1 s at 30 fps (the longest
#: 730 frames, 24 s; benchmarks/annotation_counts.py): the limit sits above them, so only typos
#: such as offset 3460 stop ingest.
MAX_DURATION_S = 25.0


@dataclass(frozen=True)
class Casme3Format(SheetFormat):
    """CAS(ME)³'s table: frames in ``<Subject>/<Filename>/color``, several clips per task."""

    def folder_parts(self, subject: str, clip: str) -> tuple[str, ...]:
        """``spNO.1/a/color``."""
        return (subject, clip, "color")

    def folder_variants(self, subject: str, clip: str, onset: int | None, emotion: str) -> tuple[tuple[str, ...], ...]:
        """The release with one folder per clip: ``Part_A_ME_clip/frame/spNO.1_a_355``."""
        if onset is None:
            return ()
        name = f"{subject}_{clip}_{onset}"
        return (("Part_A_ME_clip", "frame", name), ("frame", name), (name,))

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
    fps=30.0,
    max_duration_s=MAX_DURATION_S,
    sheet="label",
    errata=ERRATA,
)
read = FORMAT.read
match_key = FORMAT.match_key
