"""Controls that can fail: what the pipeline scores when there is nothing to learn.

A leak (class information in appearance, timing, annotation or the evaluation) would lift these
scores above chance; each control is a one-sided binomial test of the pooled accuracy against
chance (1 / classes) at the 0.1% level.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

from tests.helpers.tiny import TINY_PARAMS
from tests.helpers.workflow import make_copy, snakemake

pytestmark = pytest.mark.slow
LEVEL = 0.001


def _control_run(tmp_path: Path, **changes: dict) -> dict:
    params = copy.deepcopy(TINY_PARAMS)
    params["synth"] |= {"subjects": 4, "samples_per_class": 2}  # 24 clips: 16 or more right fails at chance 1/3
    params.setdefault("train", {})["model"] = "mdmo"  # closed form: the control costs no training time
    params.setdefault("interpolate", {})["method"] = "linear"  # nothing moves: interpolation and
    params.setdefault("magnify", {})["method"] = "none"  # magnification have nothing to work on
    for section, values in changes.items():
        params.setdefault(section, {}).update(values)
    root = make_copy(tmp_path, params)
    snakemake(root, "results/synth/metrics.json")
    return json.loads((root / "results" / "synth" / "metrics.json").read_text())


def _above_chance(metrics: dict, classes: int = 3) -> float:
    n = metrics["n_samples"]
    return binomtest(round(metrics["accuracy"] * n), n, 1 / classes, alternative="greater").pvalue


def test_motionless_clips_score_at_chance(tmp_path: Path) -> None:
    metrics = _control_run(tmp_path, synth={"amplitude_px": 0.0})
    assert metrics["n_samples"] == 24
    assert _above_chance(metrics) > LEVEL, f"motionless clips scored above chance: {metrics}"
