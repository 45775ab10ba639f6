"""`snakemake --report` on the tiny configuration: metrics, plots and frame strips in one HTML file."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.workflow import clone, run, snakemake

pytestmark = pytest.mark.slow

STRIPS = "results/synth/strips"


def test_snakemake_report_holds_metrics_plots_and_strips(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    assert "Nothing to be done" in snakemake(root, "-n").stdout  # the default target is built
    strips = pd.read_csv(root / STRIPS / "strips.csv", dtype=str)
    assert sorted(strips["label"]) == ["negative", "positive", "surprise"]  # params: report.strips 3

    result = run(root, sys.executable, "-m", "snakemake", "--report", "report.html")
    html = (root / "report.html").read_text()
    added = result.stdout + result.stderr
    expected = ["loso.csv", "metrics.json", "per_class.csv", "confusion.png", "learning_curve.png", *strips["file"]]
    for name in expected:
        assert f"Adding {name}" in added and name in html, name
    for text in ("Metrics", "Plots", "Frames", "Pooled LOSO scores", "Confusion matrix", "Learning curves"):
        assert text in html, text
