"""Runtime helpers: the worker pool that maps a stage over per-sample files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from merec.errors import MerecError
from merec.io import save_npz
from merec.runtime import map_sample_dir


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_map_sample_dir_failing_on_one_sample_leaves_no_output(tmp_path: Path, monkeypatch) -> None:
    for k in range(4):
        save_npz(tmp_path / "in" / f"s{k}.npz", x=np.full(3, k))

    def transform(arrays: dict, sample: str) -> dict:
        if sample == "s2":
            raise MerecError(f"sample {sample}: bad")
        return arrays

    for workers in (1, 2):
        with pytest.raises(MerecError, match="sample s2: bad"):
            map_sample_dir(tmp_path / "in", tmp_path / "out", transform, "t", workers=workers)
        assert _names(tmp_path) == ["in"]
