"""The ablation script on the tiny configuration: one row per change, only affected stages rerun."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.helpers.workflow import clone, run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("built")]  # one worker builds the tiny project once


def test_ablation_table_reruns_only_what_each_row_changes(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    output = root / "ablation.md"
    result = run(
        root,
        sys.executable,
        "workflow/scripts/ablation.py",
        "--seeds", "0", "1",
        "--row", "train.model=stst",
        "--cores", "2",
        "--output", str(output),
        "--json", str(root / "ablation.json"),
    )  # fmt: skip
    rows = [line for line in output.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["baseline (params.yaml)", "train.model: stst"]
    assert all(re.search(r"\d\.\d{3} ± \d\.\d{3}", row) for row in rows[1:])
    assert "seeds 0, 1" in rows[0] and result.stdout.strip() == output.read_text().split("\n", 1)[1].strip()
    log = (root / "ablation/row1/ablation.log").read_text()
    ran = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", log.split("Job stats:")[-1], re.M)} - {"total"}
    assert ran == {"train", "evaluate"}  # the baseline's features were reused
    record = json.loads((root / "ablation.json").read_text())
    base, stst = record["rows"]
    assert sorted(base["per_seed"]) == ["0", "1"] and base["versus_baseline"] is None
    versus = stst["versus_baseline"]["uf1"]
    assert versus["ci95"][0] <= versus["difference"] <= versus["ci95"][1]
    assert versus["resolved"] == (versus["ci95"][0] > 0 or versus["ci95"][1] < 0)
    assert "not resolved" in rows[2] or versus["resolved"]
