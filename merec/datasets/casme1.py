"""CASME (I): ``CASME.xlsx`` (``casme.xlsx``, the name public loaders use, is read too).

Columns ``Subject, Filename, OnsetF, ApexF1, ApexF2, OffsetF, Emotion`` and, where the copy
has it, ``Action Units`` (``AU`` in the copy public loaders read; blank columns between them are
ignored). ApexF1 is the apex; ApexF2, a second apex of some clips, is not used. Frames
``<root>/CASME_raw_selected/sub01/<Filename>/`` (``<Filename>-<n>.jpg``), 60 fps; subjects stored as numbers (``1`` ->
``sub01``). Sample ids: ``<name>-01-<Filename>``.
"""

from __future__ import annotations

from merec.datasets.casme2 import Casme2Format

ANNOTATION = "CASME.xlsx"
FRAMES = "CASME_raw_selected"


FORMAT = Casme2Format(  # same subject cells and subNN folders as CASME II
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
    aliases=(("Action Units", ("AU", "AUs")),),  # the copy public loaders read calls it AU
)
read = FORMAT.read
match_key = FORMAT.match_key
