"""Numbers in the README come from result files a script wrote: the test keeps the two in step."""

from __future__ import annotations

import json
import re

from tests.helpers import REPO


def test_the_readme_quotes_the_stage_cost_benchmark() -> None:
    data = json.loads((REPO / "benchmarks/results/stage_costs.json").read_text())
    readme = (REPO / "README.md").read_text()
    bound = sum(row["estimate_s"] for row in data["stages"] if row["estimate_s"])
    speed = readme[readme.index("**Speed**") :].split("## Running")[0]
    assert f"**{data['total_s']:.0f} s**" in speed and f"kernel-bound **{bound:.0f} s**" in speed
    assert data["date"] in speed
    for row in data["stages"]:
        if row["estimate_s"] is None:
            continue
        line = re.search(rf"^\| `{row['stage']}` \|.*$", speed, re.M)
        assert line, row["stage"]
        cells = [cell.strip() for cell in line.group(0).strip("|").split("|")]
        assert cells[1:] == [
            str(row["jobs"]),
            f"{row['share_s']:.0f}",
            f"{row['kernel_s'] * 1e3:.0f} ms x {row['kernel_count']}",
            f"{row['estimate_s']:.0f}",
        ], row["stage"]


def _ablation_cells(row: dict) -> list[str]:
    low, high = row["uf1_ci95"]
    versus = row["versus_baseline"]
    if versus is None:
        difference = ""
    else:
        d = versus["uf1"]
        verdict = "" if d["resolved"] else ", not resolved"
        difference = f"{d['difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}{verdict})"
    return [f"{row['uf1']:.3f} ± {row['uf1_sd']:.3f}", f"{low:.3f}-{high:.3f}", difference]


def test_the_readme_quotes_the_ablation_result_file() -> None:
    data = json.loads((REPO / "benchmarks/results/ablation.json").read_text())
    readme = (REPO / "README.md").read_text()
    results = readme[readme.index("## Results on the embedded dataset") :].split("**Speed**")[0]
    assert data["command"] in results and data["date"] in results
    for row in data["rows"]:
        name = "default" if row["versus_baseline"] is None else f"`{row['name']}`"
        line = re.search(rf"^\| {re.escape(name)} \|.*$", results, re.M)
        assert line, row["name"]
        cells = [cell.strip() for cell in line.group(0).strip("|").split("|")]
        assert cells[1:] == _ablation_cells(row), row["name"]
