"""Stage inputs and outputs in merec's layout, for tests that run one stage on its own: clip lists
(ingest's hand-over to face) and per-sample stages of shard manifests (:mod:`merec.shards`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from merec.datasets.clips import write_clip_lists
from merec.io import load_npz, save_npz
from merec.shards import read_stage, shard_name, shard_of, stage_samples, write_shard


def clip_list(samples: pd.DataFrame, folder: Path) -> Path:
    """One shard's clip list for every row of a samples table (frames hashed); returns its path."""
    write_clip_lists(samples, folder, [0])
    return folder / f"{shard_name(0)}.json"


def write_stage(
    folder: Path,
    stage: str,
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    shards: int = 1,
    skipped: Mapping[str, str] | None = None,
) -> list[Path]:
    """A per-sample stage's output: ``<sample>.npz`` per sample in ``shards`` shards, with manifests."""
    manifests = []
    for shard in range(shards):
        members = {s: a for s, a in arrays.items() if shard_of(s, shards) == shard}
        for sample, values in members.items():
            save_npz(folder / shard_name(shard) / f"{sample}.npz", **values)
        (folder / shard_name(shard)).mkdir(parents=True, exist_ok=True)
        left_out = {s: r for s, r in (skipped or {}).items() if shard_of(s, shards) == shard}
        manifests.append(
            write_shard(folder / f"{shard_name(shard)}.json", stage, shard, shards, members, left_out).manifest
        )
    return manifests


def stage_arrays(paths: Path | list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """Every sample's arrays of a per-sample stage (its folder or manifests)."""
    return {sample: load_npz(path) for sample, path in stage_samples(read_stage(paths)).items()}
