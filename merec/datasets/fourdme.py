"""4DME: ``4DME_Labelling_Micro_release v1.xlsx``; grey-scale frames.

Columns ``sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs`` (AU codes may carry ``(k)``,
kept as the AU); frames ``<root>/gray_micro/<sub_ID>/<fold_name>/``, 60 fps. Emotions are
positive, negative, surprise, repression, others, or a combination (``Surprise+Positive``),
which no single class holds: combinations are excluded from every label set (listed in
``skipped.csv``). Sample ids: ``<name>-<sub_ID>-<fold_name>``.
"""

from __future__ import annotations

from merec.datasets.sheets import SheetFormat

ANNOTATION = "4DME_Labelling_Micro_release v1.xlsx"
FRAMES = "gray_micro"

FORMAT = SheetFormat(
    fmt="4dme",
    annotation=ANNOTATION,
    layout=f"{ANNOTATION} and the frame folders {FRAMES}/<sub_ID>/<fold_name>/",
    subject_col="sub_ID",
    clip_col="fold_name",
    onset_col="Onset",
    apex_col="Apex",
    offset_col="Offset",
    aus_col="AUs",
    emotion_col="Emotion",
    fps=60.0,
    frames=FRAMES,
)
read = FORMAT.read
match_key = FORMAT.match_key
