"""Runtime helpers: the worker pool that maps a stage over the samples of a shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from merec.errors import MerecError
from merec.runtime import map_shard
from merec.shards import read_shard
from tests.helpers.stages import stage_arrays, write_stage


def test_a_shard_maps_to_a_shard_with_the_skips_carried_on(tmp_path: Path) -> None:
    arrays = {f"s{k}": {"x": np.full(3, k)} for k in range(5)}
    (source,) = write_stage(tmp_path / "in", "face", arrays, skipped={"s9": "no face"})
    for workers in (1, 2):
        out = tmp_path / f"out{workers}" / "shard-0.json"
        shard = map_shard(source, out, lambda a, sample: {"x": a["x"] * 2}, "magnify", "t", workers=workers)
        assert shard == read_shard(out) and shard.stage == "magnify" and shard.skipped == {"s9": "no face"}
        assert {s: list(a["x"]) for s, a in stage_arrays(out).items()} == {f"s{k}": [2 * k] * 3 for k in range(5)}
    assert read_shard(tmp_path / "out1/shard-0.json").samples == read_shard(tmp_path / "out2/shard-0.json").samples


def test_failing_on_one_sample_leaves_no_output(tmp_path: Path) -> None:
    (source,) = write_stage(tmp_path / "in", "face", {f"s{k}": {"x": np.full(3, k)} for k in range(4)})

    def transform(arrays: dict, sample: str) -> dict:
        if sample == "s2":
            raise MerecError(f"sample {sample}: bad")
        return arrays

    for workers in (1, 2):
        with pytest.raises(MerecError, match="sample s2: bad"):
            map_shard(source, tmp_path / "out" / "shard-0.json", transform, "t", "t", workers=workers)
        assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_an_empty_shard_gives_an_empty_shard(tmp_path: Path) -> None:
    (source,) = write_stage(tmp_path / "in", "face", {})
    shard = map_shard(source, tmp_path / "out" / "shard-0.json", lambda a, s: a, "interpolate", "t")
    assert shard.samples == {} and (tmp_path / "out" / "shard-0").is_dir()


def test_software_versions_name_the_builds_that_can_change_the_numbers() -> None:
    from merec.runtime import software_versions

    versions = software_versions()
    assert {"python", "numpy", "torch", "scikit-learn", "cpu"} <= set(versions)
    assert all(isinstance(value, str) and value for value in versions.values())
