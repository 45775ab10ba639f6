"""The ablation script on the tiny configuration: one row per change, only affected stages rerun."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from tests.helpers.workflow import clone, run

pytestmark = pytest.mark.slow


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
    (own_draw,) = base["per_draw"].values()  # one data draw: params.yaml's
    assert sorted(own_draw["per_seed"]) == ["0", "1"] and base["versus_baseline"] is None
    versus = stst["versus_baseline"]["uf1"]
    assert versus["ci95"][0] <= versus["difference"] <= versus["ci95"][1]
    assert versus["resolved"] == (versus["ci95"][0] > 0 or versus["ci95"][1] < 0)
    assert "not resolved" in rows[2] or versus["resolved"]


def _predictions(subjects: int, seed_hits: dict[int, float], rng_seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    rows = []
    classes = ["negative", "positive", "surprise"]
    for seed, hit_rate in seed_hits.items():
        for s in range(subjects):
            for k, label in enumerate(classes):
                predicted = label if rng.random() < hit_rate else classes[(k + 1) % 3]
                rows.append(
                    {"seed": seed, "subject": f"s{s}", "sample": f"s{s}-{k}", "label": label, "predicted": predicted}
                )
    return pd.DataFrame(rows)


def test_rows_over_several_draws_pool_each_draws_subjects_as_their_own() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "workflow" / "scripts"))
    from ablation import pooled_over_draws, summarise_row

    classes = ["negative", "positive", "surprise"]
    by_draw = {0: _predictions(6, {0: 0.9, 1: 0.8}, 0), 1: _predictions(6, {0: 0.7, 1: 0.6}, 1)}
    pooled = pooled_over_draws(by_draw)
    assert pooled["subject"].nunique() == 12 and len(pooled) == 72  # subject s0 of draw 0 is not s0 of draw 1
    runs = {
        draw: {"metrics": {"per_seed": {"0": {"uf1": 0.9 - draw / 5, "uar": 0.9, "accuracy": 0.9},
                                        "1": {"uf1": 0.8 - draw / 5, "uar": 0.8, "accuracy": 0.8}}},
               "predictions": frame, "minutes": 1.0}
        for draw, frame in by_draw.items()
    }  # fmt: skip
    base = summarise_row("baseline", runs, classes, None)
    # one statistic: each seed's UF1 of both draws' clips pooled; its mean, sd and interval
    per_seed = [
        f1_score(part["label"], part["predicted"], labels=classes, average="macro")
        for _, part in pooled.groupby("seed")
    ]
    assert base["uf1"] == pytest.approx(np.mean(per_seed)) and base["uf1_sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert base["uf1_ci95"][0] < base["uf1"] < base["uf1_ci95"][1] and set(base["per_draw"]) == {"0", "1"}
    same = summarise_row("same", runs, classes, base)
    assert same["versus_baseline"]["uf1"]["difference"] == 0 and not same["versus_baseline"]["uf1"]["resolved"]


def test_a_run_left_locked_gets_the_unlock_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "workflow" / "scripts"))
    import ablation

    def locked(command: list[str], cwd: Path, env: dict, stdout: object, stderr: object) -> object:
        stdout.write("LockException:\nError: Directory cannot be locked.\n")
        return type("Result", (), {"returncode": 1})()

    monkeypatch.setattr(ablation.subprocess, "run", locked)
    monkeypatch.setattr(ablation, "environment", lambda workdir: {})
    with pytest.raises(SystemExit, match=r"interrupted .* snakemake --unlock --cores 1 results/synth/loso.csv"):
        ablation.run_workflow(tmp_path, "results/synth/loso.csv", "2")
