"""Validation of annotated clips into the samples table.

Every adapter turns its annotation file (or folder layout) into :class:`Candidate` rows, one per
annotated clip, recording each problem it finds instead of stopping at the first one.
:func:`finalize` then maps emotions to classes, checks phases, frame folders and frame files,
finds duplicated sample ids, and either raises one error that lists every problem
(``on_error="fail"``) or leaves those rows out and lists them in ``skipped`` (``"skip"``).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.apex import METHOD as APEX_METHOD
from merec.datasets.apex import flow_apex
from merec.datasets.cells import RowProblem
from merec.datasets.frames import compact_numbers, fill_gaps, list_frames
from merec.datasets.ids import fold_id
from merec.datasets.settings import IngestParams
from merec.errors import MerecError

LOG = logging.getLogger("merec.datasets")

SAMPLE_COLUMNS = [
    "dataset", "subject", "fold", "sample", "frames_dir", "onset", "apex", "offset",
    "emotion", "label", "aus", "action_units",
]  # fmt: skip
SKIPPED_COLUMNS = ["dataset", "row", "subject", "sample", "reason"]
CORRECTION_COLUMNS = ["dataset", "row", "subject", "sample", "field", "old", "new", "source"]
ON_ERROR = ("fail", "skip")
MAX_GAP_SHARE = 0.5  # a filled clip missing more than half of its frames is worth a warning
MAX_LISTED = 20  # problems listed in one error message
EXCLUDED = "label excluded: "
FOLD_DROPPED = "fold dropped: "
REMOVED = "erratum: "


@dataclass
class IngestResult:
    """The normalised samples table, the rows left out (with reasons) and the corrections made."""

    samples: pd.DataFrame
    skipped: pd.DataFrame
    corrections: pd.DataFrame
    frames: dict[str, list[Path]] = field(default_factory=dict)


@dataclass
class Candidate:
    """One annotated clip as read from a dataset, before validation.

    ``where`` locates it for messages (``<file> row <n>`` or the clip folder); ``row`` is the
    spreadsheet row as Excel shows it (None for folder-only datasets); ``label`` is preset only
    when the source gives classes directly (MEGC2019); ``key`` is the (subject, clip) pair the
    MEGC2019 ground truth is matched on. ``apex_missing`` holds what stood in the apex cell when
    the apex is not annotated (``/``, ``-1``, empty; for datasets without an apex column a note),
    and ``apex_required`` is False where the dataset has no apex at all (always estimated);
    ``removed`` is the source of an erratum that leaves the row out; ``label_format`` the format
    whose emotion mapping labels the row (set by composites); ``fps`` is the dataset's
    frame rate and ``max_duration_s`` its longest plausible onset-to-offset span; ``damaged``
    the clip's frame numbers listed as damaged (treated as missing); ``corrections`` lists what
    was changed on the user's behalf (``field``, ``old``, ``new``, ``source``).
    """

    where: str
    row: int | None = None
    subject: str | None = None
    sample: str | None = None
    frames_dir: Path | None = None
    onset: int | None = None
    apex: int | None = None
    offset: int | None = None
    emotion: str = ""
    action_units: str = ""
    aus: str = ""
    label: str | None = None
    key: tuple[str, str] | None = None
    removed: str | None = None
    label_format: str | None = None
    apex_missing: str | None = None
    apex_required: bool = True
    fps: float | None = None
    max_duration_s: float = 1.0
    damaged: frozenset[int] = frozenset()
    problems: list[str] = field(default_factory=list)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    frame_files: list[Path] = field(default_factory=list)

    def correct(self, field_name: str, old: Any, new: Any, source: str) -> None:
        """Record a change made on the user's behalf."""
        self.corrections.append({"field": field_name, "old": str(old), "new": str(new), "source": source})


def finalize(
    name: str,
    candidates: Iterable[Candidate],
    classify: Callable[[Candidate], str | None],
    params: IngestParams | None = None,
    folds: str = "subject",
) -> IngestResult:
    """Validate candidates into the samples table (see the module docstring).

    ``classify`` gives a candidate's class (None: excluded by the label set); ``folds`` is
    ``subject`` (LOSO) or ``dataset`` (one fold per component of a composite).
    """
    params = params or IngestParams.from_mapping()
    kept: list[Candidate] = []
    bad: list[Candidate] = []
    skipped: list[dict[str, Any]] = []
    for found in candidates:
        if found.removed:
            skipped.append(_skip_record(name, found, f"{REMOVED}{found.removed}"))
            continue
        if _resolve_label(found, classify):
            skipped.append(_skip_record(name, found, f"{EXCLUDED}{found.emotion}"))
            continue
        reason = _check_apex_policy(found, params.missing_apex)
        if reason:
            skipped.append(_skip_record(name, found, reason))
            continue
        _check_phases(found, params.max_duration_s or found.max_duration_s)
        if not found.problems:
            reason = _check_frames(found, params.frame_gaps)
            if reason:
                skipped.append(_skip_record(name, found, reason))
                continue
        (bad if found.problems else kept).append(found)
    bad.extend(_pop_duplicates(kept))
    if bad and params.on_error == "fail":
        raise MerecError(_problem_report(name, bad))
    skipped.extend(_skip_record(name, found, " | ".join(found.problems)) for found in bad)
    skipped.extend(_dropped_folds(name, kept, bad))
    corrections = [dict(_skip_record(name, found, ""), **fix) for found in kept for fix in found.corrections]
    for record in corrections:
        del record["reason"]
    return IngestResult(
        _samples_table(name, kept, skipped, folds),
        _skipped_table(skipped),
        _table(corrections, CORRECTION_COLUMNS),
        {str(found.sample): found.frame_files for found in kept},
    )


def _dropped_folds(name: str, kept: list[Candidate], bad: list[Candidate]) -> list[dict[str, Any]]:
    """Subjects that lost every row to on_error='skip': a warning and one report row each.

    Skipping must never change the fold set silently: such a subject's LOSO fold disappears, so it
    is logged as a warning and listed in the skipped table (``row`` empty, reason ``fold dropped:``).
    Subjects left out only by the label set are not listed here (their rows say ``label excluded``).
    """
    have = {found.subject for found in kept}
    lost: dict[str, list[str]] = defaultdict(list)
    for found in bad:
        if found.subject is not None and found.subject not in have:
            lost[found.subject].append(found.where)
    records = []
    for subject in sorted(lost):
        reason = (
            f"{FOLD_DROPPED}every usable row of subject {subject} was skipped ({len(lost[subject])} row(s), see "
            "their reasons); its LOSO fold is left out: fix those rows to keep it"
        )
        LOG.warning("dataset '%s': %s", name, reason)
        records.append({"dataset": name, "row": None, "subject": subject, "sample": None, "reason": reason})
    return records


def _resolve_label(found: Candidate, classify: Callable[[Candidate], str | None]) -> bool:
    """Set ``found.label``; True when the label set excludes the emotion."""
    if found.label is not None:
        return False
    try:
        label = classify(found)
    except RowProblem as exc:
        found.problems.append(f"{exc}")
        return False
    if label is None:
        return True
    found.label = label
    return False


def _check_apex_policy(found: Candidate, policy: str) -> str | None:
    """Apply ``ingest.missing_apex`` to a row whose apex is not annotated; a skip reason or None."""
    if found.apex_missing is None or not found.apex_required or policy == "estimate":
        return None
    what = f"apex is not annotated ({found.apex_missing!r})"
    if policy == "skip":
        return f"{what}; ingest.missing_apex: skip"
    found.problems.append(f"{what}; set ingest.missing_apex: estimate to estimate it from the frames")
    return None


def _check_phases(found: Candidate, max_duration_s: float) -> None:
    onset, apex, offset = found.onset, found.apex, found.offset
    if onset is None or offset is None:
        return
    if onset > offset:
        found.problems.append(f"onset {onset} is after offset {offset}")
        return
    if apex is not None and not onset <= apex <= offset:
        found.problems.append(f"apex {apex} is outside [onset {onset}, offset {offset}]")
    if found.fps:
        span = offset - onset + 1
        seconds = span / found.fps
        if seconds > max_duration_s:
            found.problems.append(
                f"onset {onset} to offset {offset} spans {span} frames = {seconds:.2f} s at {found.fps:g} fps, "
                f"longer than this dataset's clips can be ({max_duration_s:g} s); check onset and offset for a "
                "typo, or set ingest.max_duration_s"
            )


def _check_frames(found: Candidate, gap_policy: str) -> str | None:
    """Check the clip's frame files (and estimate a missing apex); a skip reason or None."""
    if found.frames_dir is None:
        return None
    if not found.frames_dir.is_dir():
        found.problems.append(f"frame folder {found.frames_dir} is missing")
        return None
    try:
        frames = list_frames(found.frames_dir, exclude=found.damaged)
    except MerecError as exc:
        found.problems.append(str(exc))
        return None
    phases = {"onset": found.onset, "apex": found.apex, "offset": found.offset}
    missing = [f"{phase} {number}" for phase, number in phases.items() if number is not None and number not in frames]
    if missing:
        have = f"frames {min(frames)}-{max(frames)}" if frames else "no frame files"
        damaged = [phase for phase, number in phases.items() if number in found.damaged]
        note = f" ({', '.join(damaged)} listed as damaged)" if damaged else ""
        found.problems.append(
            f"frame file(s) for {', '.join(missing)} missing in {found.frames_dir} (it has {have}){note}"
        )
        return None
    assert found.onset is not None and found.offset is not None
    gaps = [number for number in range(found.onset, found.offset + 1) if number not in frames]
    if gaps:
        span = found.offset - found.onset + 1
        listed = compact_numbers(gaps)
        where = f"frame(s) {listed} missing in {found.frames_dir} (frames {found.onset}-{found.offset} are needed)"
        if gap_policy == "skip":
            return f"{where}; ingest.frame_gaps: skip"
        if gap_policy == "fail":
            found.problems.append(f"{where}; restore them from the original data")
            return None
        if len(gaps) > MAX_GAP_SHARE * span:
            LOG.warning("%s: more than half of the clip is missing, filled: %s", found.where, where)
        found.correct("frames", f"missing {listed}", "each filled with the previous frame", "ingest.frame_gaps: fill")
    found.frame_files = fill_gaps(frames, found.onset, found.offset)
    if found.apex is None and found.apex_missing is not None:
        try:
            found.apex = found.onset + flow_apex(found.frame_files)
        except MerecError as exc:
            found.problems.append(str(exc))
            return None
        found.correct("apex", found.apex_missing, found.apex, APEX_METHOD)
    return None


def _pop_duplicates(kept: list[Candidate]) -> list[Candidate]:
    """Remove every candidate whose sample id is not unique; return them with a problem noted."""
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for found in kept:
        groups[str(found.sample)].append(found)
    dupes = [group for group in groups.values() if len(group) > 1]
    for group in dupes:
        places = ", ".join(found.where for found in group)
        for found in group:
            found.problems.append(f"sample id {found.sample} is used by more than one row ({places})")
    kept[:] = [found for found in kept if not found.problems]
    return [found for group in dupes for found in group]


def _problem_report(name: str, bad: list[Candidate]) -> str:
    lines = [
        f"dataset '{name}': {len(bad)} annotated clip(s) have problems; fix them in the "
        "annotation file or the data folder, or leave them out with on_error='skip' "
        "(params.yaml: ingest.on_error: skip):"
    ]
    for found in bad[:MAX_LISTED]:
        sample = f" (sample {found.sample})" if found.sample else ""
        if len(found.problems) == 1:
            lines.append(f"  - {found.where}{sample}: {found.problems[0]}")
        else:
            lines.append(f"  - {found.where}{sample}:")
            lines.extend(f"      * {problem}" for problem in found.problems)
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    return "\n".join(lines)


def _skip_record(name: str, found: Candidate, reason: str) -> dict[str, Any]:
    return {"dataset": name, "row": found.row, "subject": found.subject, "sample": found.sample, "reason": reason}


def _skipped_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    return _table(records, SKIPPED_COLUMNS)


def _table(records: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(records, columns=columns)
    table["row"] = table["row"].astype("Int64")
    return table


def _samples_table(name: str, kept: list[Candidate], skipped: list[dict[str, Any]], folds: str) -> pd.DataFrame:
    if not kept:
        raise MerecError(
            f"dataset '{name}': no usable samples ({len(skipped)} row(s) left out, e.g. "
            f"{skipped[0]['reason'] if skipped else 'no rows'}); check the annotation file "
            "and the label set"
        )
    table = pd.DataFrame(
        [
            {
                "dataset": name,
                "subject": found.subject,
                "fold": fold_id(str(found.subject).split("/")[0] if folds == "dataset" else str(found.subject)),
                "sample": found.sample,
                "frames_dir": str(found.frames_dir),
                "onset": found.onset,
                "apex": found.apex,
                "offset": found.offset,
                "emotion": found.emotion,
                "label": found.label,
                "aus": found.aus,
                "action_units": found.action_units,
            }
            for found in kept
        ],
        columns=SAMPLE_COLUMNS,
    )
    table[["onset", "apex", "offset"]] = table[["onset", "apex", "offset"]].astype("int64")
    table = table.sort_values(["subject", "sample"], kind="stable").reset_index(drop=True)
    _warn_single_sample_subjects(name, table)
    return table


def _warn_single_sample_subjects(name: str, table: pd.DataFrame) -> None:
    counts = Counter(table["subject"])
    lonely = sorted(subject for subject, count in counts.items() if count == 1)
    if lonely:
        samples = table.loc[table["subject"].isin(lonely), "sample"].tolist()
        LOG.warning(
            "dataset '%s': subject(s) with a single sample: %s (sample(s) %s); their LOSO folds test one clip, "
            "which pooled UF1/UAR handle, but per-fold scores of such folds are 0 or 1: check the annotation "
            "if you expected more clips of them",
            name, ", ".join(lonely), ", ".join(samples),
        )  # fmt: skip
