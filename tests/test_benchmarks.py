"""The benchmark scripts' own helpers (the benchmarks themselves run on demand, not in the suite)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from merec.datasets import load_samples
from tests.helpers import REPO


def load_script(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
