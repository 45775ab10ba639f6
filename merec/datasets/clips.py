"""Clip lists: the ingest stage's hand-over to the face stage, one file per shard.

``<interim>/<dataset>/clips/shard-<k>.json`` lists the clips of shard ``k`` (see
:mod:`merec.shards`): each clip's row of the samples table and every frame file from onset to
offset with its SHA-256. A face shard depends on its clip list alone, so a changed, added or
removed frame (or annotation row) changes exactly the clip lists, and so the face shards, that
hold it, for Snakemake and DVC alike. The writer and the reader live here together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.frames import clip_frame_paths
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir
from merec.runtime import ordered_map
from merec.shards import file_digest, shard_name, shard_of

VERSION = 1
ROW_FIELDS = ("dataset", "subject", "fold", "sample", "frames_dir", "onset", "apex", "offset", "label", "aus")


@dataclass(frozen=True)
class Clip:
    """One clip of a clip list: its samples-table fields and its frame files, onset to offset."""

    row: dict[str, Any]
    frames: tuple[Path, ...]

    @property
    def sample(self) -> str:
        return str(self.row["sample"])


@dataclass(frozen=True)
class ClipList:
    """The clips of one shard."""

    path: Path
    dataset: str
    shard: int
    shards: int
    clips: tuple[Clip, ...]


def _clip_record(item: tuple[dict[str, Any], Sequence[Path] | None]) -> dict[str, Any]:
    row, given = item
    paths = clip_frame_paths(row) if given is None else given
    return {
        "row": {key: row[key] for key in ROW_FIELDS},
        "frames": [[path.name, file_digest(path)] for path in paths],
    }


def write_clip_lists(
    samples: pd.DataFrame,
    folder: PathLike,
    shards: Sequence[int],
    workers: int = 1,
    frames: Mapping[str, Sequence[Path]] | None = None,
) -> None:
    """Write ``shard-<k>.json`` for every shard into ``folder`` (replaced atomically as a whole).

    ``frames`` gives each sample's frame files from onset to offset as ingest resolved them
    (gaps filled, damaged frames replaced); without it every frame from onset to offset must
    exist (the error names the missing ones). Frames are hashed with ``workers`` processes.
    """
    count = len(shards)
    rows = [
        {key: (int(value) if key in ("onset", "apex", "offset") else str(value)) for key, value in row.items()}
        for row in samples[list(ROW_FIELDS)].to_dict("records")
    ]
    items = [(row, None if frames is None else frames[row["sample"]]) for row in rows]
    records = list(ordered_map(_clip_record, items, workers, "hash frames"))
    with atomic_dir(folder) as tmp:
        for shard in shards:
            members = [r for r, row in zip(records, rows, strict=True) if shard_of(row["sample"], count) == shard]
            dataset = rows[0]["dataset"] if rows else ""
            record = {"version": VERSION, "dataset": dataset, "shard": shard, "shards": count, "clips": members}
            (Path(tmp) / f"{shard_name(shard)}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_clip_list(path: PathLike) -> ClipList:
    """A shard's clip list; every frame path resolved (existence is the face stage's to check)."""
    file = Path(path)
    if not file.is_file():
        raise MerecError(f"{file}: clip list is missing; rerun the ingest stage")
    try:
        record = json.loads(file.read_text())
        clips = tuple(
            Clip(dict(clip["row"]), tuple(Path(clip["row"]["frames_dir"]) / name for name, _ in clip["frames"]))
            for clip in record["clips"]
        )
        return ClipList(file, str(record["dataset"]), int(record["shard"]), int(record["shards"]), clips)
    except (ValueError, KeyError, TypeError) as exc:
        raise MerecError(f"{file}: not a clip list ({exc}); rerun the ingest stage") from exc
