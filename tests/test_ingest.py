"""The ingest stage: skipping never changes the fold set silently; warnings name the samples."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from merec.datasets import load_samples
from merec.datasets.ingest import IngestParams
from merec.datasets.ingest import run as ingest
from merec.io import (
    MerecError,
)
from tests.helpers.datasets import SAMM_ROWS, make_samm, rows_of

# ---------------------------------------------------------------------------------------------
# ingest: skipping never changes the fold set silently


def test_ingest_skip_that_drops_a_subject_is_reported(tmp_path: Path, caplog) -> None:
    rows = [*SAMM_ROWS[:4], *rows_of((9, "009_1_1", 1, "x", 3, "4", "Anger"), (9, "009_1_2", 9, 8, 7, "4", "Anger"))]
    root = make_samm(tmp_path / "samm", rows)
    spec = {"format": "samm", "root": str(root)}
    with pytest.raises(MerecError) as info:
        load_samples("samm", spec)
    assert "row 19" in str(info.value) and "row 20" in str(info.value)
    out = tmp_path / "interim" / "samples.csv"
    with caplog.at_level(logging.WARNING, logger="merec.datasets"):
        ingest("samm", spec, out, IngestParams.from_mapping({"on_error": "skip"}))
    assert "every usable row of subject samm/009 was skipped" in caplog.text
    samples = pd.read_csv(out, dtype=str)
    assert sorted(samples["fold"].unique()) == ["samm-006", "samm-007"]
    skipped = pd.read_csv(out.with_name("skipped.csv"), dtype=str, keep_default_na=False)
    assert skipped["sample"].tolist()[:2] == ["samm-009-009_1_1", "samm-009-009_1_2"]
    assert "'Apex Frame' 'x' is not" in skipped["reason"][0] and "onset 9 is after offset 7" in skipped["reason"][1]
    dropped = skipped[skipped["reason"].str.startswith("fold dropped: ")]
    assert dropped["subject"].tolist() == ["samm/009"] and dropped["row"].tolist() == [""]


def test_label_exclusion_of_a_whole_subject_is_not_a_dropped_fold(tmp_path: Path) -> None:
    rows = [*SAMM_ROWS[:4], *rows_of((9, "009_1_1", 1, 2, 3, "4", "Other"))]
    result = load_samples("samm", {"format": "samm", "root": str(make_samm(tmp_path, rows))}, on_error="skip")
    assert result.skipped["reason"].tolist() == ["label excluded: Other"]


def test_single_sample_subject_warning_names_the_sample(tmp_path: Path, caplog) -> None:
    rows = [*SAMM_ROWS[:4], *rows_of((9, "009_1_1", 1, 2, 3, "4", "Anger"))]
    with caplog.at_level(logging.WARNING, logger="merec.datasets"):
        load_samples("samm", {"format": "samm", "root": str(make_samm(tmp_path, rows))})
    assert "single sample: samm/009 (sample(s) samm-009-009_1_1)" in caplog.text
