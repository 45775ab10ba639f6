"""Counts of an official annotation file as merec reads it, without its frames.

For a reviewer (or a user) who holds the file: how many rows, how many the official errata
correct or remove, how many each label set keeps, and how long the clips are at the dataset's
frame rate (the facts docs/datasets.md quotes for the duration limits). Frames are not needed:
the frame checks of ingest are not run.

    python benchmarks/annotation_counts.py casme3 "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    python benchmarks/annotation_counts.py samm SAMM_Micro_FACS_Codes_v2.xlsx --json counts.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _record import write_record

from merec.datasets.casme2 import FORMAT as CASME2
from merec.datasets.casme3 import FORMAT as CASME3
from merec.datasets.cells import RowProblem
from merec.datasets.labels import LABEL_SETS, LabelMap
from merec.datasets.samm import FORMAT as SAMM
from merec.datasets.sheets import SheetFormat
from merec.errors import MerecError

FORMATS: dict[str, SheetFormat] = {"samm": SAMM, "casme2": CASME2, "casme3": CASME3}


def counts(fmt: str, annotation: Path, errata: bool = True) -> dict[str, Any]:
    """What ingest would make of ``annotation`` (format ``fmt``) before looking at frames."""
    sheet = FORMATS[fmt]
    with tempfile.TemporaryDirectory() as root:
        found = sheet.read(fmt, {"root": root, "annotation": str(annotation.resolve())}, errata=errata)
    kept = [c for c in found if not c.removed]
    spans = [c.offset - c.onset + 1 for c in kept if c.onset is not None and c.offset is not None]
    labels: dict[str, dict[str, int]] = {}
    for label_set in LABEL_SETS:
        classify = LabelMap.of(fmt, label_set).classify
        tally: Counter[str] = Counter()
        for candidate in kept:
            try:
                tally[str(classify(candidate.emotion) or "(excluded)")] += 1
            except RowProblem:  # an unknown emotion is counted, not raised
                tally["(unknown emotion)"] += 1
        labels[label_set] = dict(sorted(tally.items()))
    one_second = sheet.fps
    return {
        "format": fmt,
        "file": annotation.name,
        "rows": len(found),
        "errata": errata,
        "removed_by_errata": len(found) - len(kept),
        "corrections": sum(len(c.corrections) for c in kept),
        "rows_with_problems": sum(bool(c.problems) for c in kept),
        "apex_not_annotated": sum(c.apex_missing is not None for c in kept),
        "fps": sheet.fps,
        "clips_over_1s": sum(span > one_second for span in spans),
        "longest_frames": max(spans, default=0),
        "max_duration_s": sheet.max_duration_s,
        "labels": labels,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=sorted(FORMATS))
    parser.add_argument("annotation", type=Path)
    parser.add_argument("--no-errata", action="store_true", help="read the file as it is")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)
    try:
        result = counts(args.format, args.annotation, errata=not args.no_errata)
    except MerecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_record(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
