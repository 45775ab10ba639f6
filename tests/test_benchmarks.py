"""The benchmark scripts' own helpers (the benchmarks themselves run on demand, not in the suite)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from merec.datasets import load_samples
from tests.helpers import REPO
from tests.helpers.scripts import load_script


def test_the_scale_dataset_is_a_samm_copy_with_the_asked_clip_and_subject_counts(tmp_path: Path) -> None:
    scale = load_script("workflow_scale")
    root = tmp_path / "samm"
    assert scale.scale_dataset(root, frame_size=160, subjects=3, wanted=16) == 16
    result = load_samples("samm", {"format": "samm", "root": str(root)})
    table = result.samples
    assert len(table) == 16 and result.skipped.empty
    assert table.groupby("subject").size().tolist() == [6, 5, 5]  # one clip dropped from each of the last subjects
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["SAMM_Micro_FACS_Codes_v2.xlsx"]
    with pytest.raises(SystemExit, match="at least one per subject"):
        scale.scale_dataset(tmp_path / "other", frame_size=160, subjects=3, wanted=2)


def test_model_costs_measure_every_model_on_the_default_shapes() -> None:
    import yaml

    costs = load_script("model_costs")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    features = costs.default_inputs(params, subjects=3, per_subject=3)
    assert features.inputs["frames"].shape[1:] == (params["interpolate"]["frames"], 1, 64, 64)
    params["train"]["epochs"] = 1
    row = costs.measure(params, "stst", features, repeats=1)
    assert row["parameters"] == 1683 and row["fold_seconds"] > 0 and row["inference_ms_per_clip"] > 0
    assert "fold_epochs_measured" not in row
    params["train"]["epochs"] = 40
    short = costs.measure(params, "stst", features, repeats=1, epochs=1)  # a slow model's fold, scaled to 40 epochs
    assert short["fold_epochs_measured"] == 1 and short["fold_seconds"] > 0  # recorded as scaled, not timed here


def test_the_model_comparison_reads_scores_from_the_ablation_and_says_what_is_missing() -> None:
    costs = load_script("model_costs")
    versus = {"uf1": {"difference": -0.1, "ci95": [-0.15, -0.05], "resolved": True}}
    ablation = {
        "baseline_params": {"train": {"model": "aurel", "models": {"aurel": {}}}},
        "draws": [0, 1],
        "seeds": [0, 1],
        "rows": [
            {"name": "baseline", "uf1": 0.75, "uf1_sd": 0.02, "uf1_ci95": [0.7, 0.8], "versus_baseline": None},
            {
                "name": "train.model: stst",
                "uf1": 0.65,
                "uf1_sd": 0.01,
                "uf1_ci95": [0.6, 0.7],
                "versus_baseline": versus,
            },
        ],
    }
    size = {"parameters": 1683, "fold_seconds": 5.0, "fold_vs_stst": 1.0, "inference_ms_per_clip": 0.5}
    record = {"models": {"aurel": size | {"parameters": 20000}, "stst": size, "t3d": size}}
    published = {"models": {"stst": {"uf1": 0.7353, "uar": 0.7605, "note": "last epoch"}}}
    lines = costs.comparison_table(ablation, record, published).splitlines()
    assert lines[2].startswith("| `aurel` | 20,000 |")
    assert "0.750 ± 0.020 | 0.700-0.800 | (default) | none |" in lines[2]
    assert "-0.100 (-0.150 to -0.050) | 0.7353 / 0.7605 (last epoch) |" in lines[3]
    assert "not in the ablation record" in lines[4]
    # a slow model's own run of the same default (its record knows another model's options) fills its row
    t3d = copy.deepcopy(ablation)
    t3d["baseline_params"]["train"]["models"]["t3d"] = {"stem": 24}
    t3d["command"] = "ablation.py --row train.model=t3d"
    t3d["rows"][1] = t3d["rows"][1] | {"name": "train.model: t3d", "uf1": 0.3}
    lines = costs.comparison_table(ablation, record, published, more=[t3d]).splitlines()
    assert "| 0.300 ± 0.010 |" in lines[4] and "0.650 ± 0.010" in lines[3]
    t3d["baseline_params"]["train"]["epochs"] = 3
    with pytest.raises(ValueError, match="another default"):
        costs.comparison_table(ablation, record, published, more=[t3d])


def test_the_cluster_projection_recovers_the_measured_run_and_spreads_its_core_hours() -> None:
    import json

    scale = load_script("workflow_scale")
    costs = json.loads((REPO / "benchmarks/results/stage_costs.json").read_text())
    stages = {row["stage"]: row for row in costs["stages"]}
    # the measured job itself (72 clips, 12 subjects, 2 cores): its own per-sample and fold job seconds
    same = scale.projection(costs, clips=72, subjects=12, node_cores=2, nodes=1)
    per_sample = sum(stages[name]["job_seconds"] for name in scale.PER_SAMPLE) / 2
    assert same["per_sample_h"] * 3600 == pytest.approx(per_sample)
    assert same["train_h"] * 3600 == pytest.approx(stages["train"]["job_seconds"] / 2)
    node = scale.projection(costs, clips=1100, subjects=100, node_cores=32, nodes=1)
    cluster = scale.projection(costs, clips=1100, subjects=100, node_cores=32, nodes=10)
    assert node["core_h"] == pytest.approx(cluster["core_h"]) and cluster["total_h"] < node["total_h"]
    assert node["fold_s"] > same["fold_s"]  # a fold of 1,089 training clips costs more than one of 66
