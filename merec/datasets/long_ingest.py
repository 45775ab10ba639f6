"""Ingest of a long-video dataset (spotting): ``videos.csv``, ``intervals.csv``, ``corrections.csv``
and ``skipped.csv`` in one folder.

``videos.csv`` holds one row per video (video, subject, fold, folder, frames, first and last frame
number, fps) and its shard (``shard``, of ``shards``: :func:`merec.shards.shard_of` of the video
id over ``ingest.shards``), so the per-video spotting jobs split the same way as the short-clip
stages. ``videos/shard-<k>.json`` is each shard's video list in the clip-list layout
(:mod:`merec.datasets.clips`: a video is a "clip" from its first to its last frame, every frame
file with its SHA-256), so a changed frame reruns exactly its shard's spotting features.
``intervals.csv`` holds the annotated intervals (row, subject, video, onset, apex, offset, type
micro/macro, emotion, AUs) and ``label``: the emotion's class under ``ingest.label_set``
(empty for macro-expressions and for emotions the label set leaves out).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from merec.datasets.cells import RowProblem
from merec.datasets.clips import write_clip_lists
from merec.datasets.frames import list_frames
from merec.datasets.labels import LabelMap, label_classes
from merec.datasets.long_videos import (
    CASME2_LV_ANNOTATION,
    CASME3_LV_MACRO,
    SAMM_LV_PATTERN,
    LongVideos,
    read_casme2_lv,
    read_casme3_lv,
    read_samm_lv,
)
from merec.datasets.settings import IngestParams
from merec.errors import MerecError
from merec.io import PathLike, write_csv
from merec.runtime import available_threads
from merec.shards import shard_of

LOG = logging.getLogger("merec.ingest")
READERS = {"samm_lv": read_samm_lv, "casme2_lv": read_casme2_lv, "casme3_lv": read_casme3_lv}
LABEL_FORMAT = {"samm_lv": "samm", "casme2_lv": "casme3c", "casme3_lv": "casme3"}  # each release's emotion vocabulary


def load_long_videos(
    name: str, spec: Mapping[str, Any], on_error: str = "fail", errata: str = "official"
) -> LongVideos:
    """The long-video dataset ``name`` (its ``long_videos.<name>`` entry) as tables; ``errata``:
    ``official`` applies a release's known corrections (CAS(ME)^3's), ``none`` reads it as released."""
    fmt = spec.get("format")
    if fmt not in READERS:
        raise MerecError(f"long video dataset {name}: unknown format {fmt!r}; choose one of {', '.join(READERS)}")
    root = Path(spec["root"])
    if not root.is_dir():
        raise MerecError(
            f"long video dataset {name}: {root} does not exist; put the release there as downloaded (docs/spotting.md)"
        )
    return READERS[fmt](root, name, on_error, spec.get("fps"), errata == "official")


def _labels(intervals: pd.DataFrame, fmt: str, label_set: str) -> list[str]:
    mapping = LabelMap.of(LABEL_FORMAT[fmt], label_set)
    labels = []
    for row in intervals.itertuples(index=False):
        if row.type != "micro" or not row.emotion:
            labels.append("")
            continue
        try:
            labels.append(mapping.classify(row.emotion) or "")
        except RowProblem as exc:
            raise MerecError(f"row {row.row} (video {row.video}): {exc}") from exc
    return labels


def _labelled(intervals: pd.DataFrame, fmt: str, label_set: str) -> pd.DataFrame:
    """The intervals with their class under ``label_set`` (``label``; empty: none) and fold."""
    out = intervals.copy()
    out["label"] = _labels(out, fmt, label_set)
    out["fold"] = out["subject"].str.split("/").str[-1]
    return out


def release_intervals(root: PathLike, fmt: str, label_set: str) -> pd.DataFrame:
    """The annotated intervals of a long-video release as ``intervals.csv`` holds them (its official
    errata applied; rows that cannot be read are left out, with a warning)."""
    data = load_long_videos(Path(root).name, {"format": fmt, "root": str(root)}, on_error="skip")
    if len(data.skipped):
        LOG.warning("%s: %d annotation row(s) left out: %s", root, len(data.skipped),
                    "; ".join(f"row {r.row}: {r.reason}" for r in data.skipped.head(5).itertuples()))  # fmt: skip
    return _labelled(data.intervals, fmt, label_set)


def release_format(root: PathLike) -> str:
    """The long-video format of a release folder, from the annotation files it holds."""
    folder = Path(root)
    names = [path.name for path in folder.iterdir()] if folder.is_dir() else []
    if any(SAMM_LV_PATTERN.fullmatch(name) for name in names):
        return "samm_lv"
    if CASME2_LV_ANNOTATION in names:
        return "casme2_lv"
    if CASME3_LV_MACRO in names:
        return "casme3_lv"
    raise MerecError(
        f"{folder}: no SAMM Long Videos, CAS(ME)^2 or CAS(ME)^3 annotation file in it; give the release's root "
        "folder as downloaded, or an intervals CSV"
    )


def label_classes_of(fmt: str, label_set: str) -> list[str]:
    """The fixed class order of the micro-expression labels of a long-video release under ``label_set``."""
    return label_classes(label_set, LABEL_FORMAT[fmt])


def overlaps(intervals: pd.DataFrame) -> list[tuple[int, int, str, str]]:
    """(row, row, video, type) of annotated intervals of one type that overlap in a video."""
    found = []
    for (video, kind), group in intervals.groupby(["video", "type"], sort=True):
        ordered = group.sort_values(["onset", "offset"])
        for (_, a), (_, b) in zip(ordered.iloc[:-1].iterrows(), ordered.iloc[1:].iterrows(), strict=True):
            if b["onset"] <= a["offset"]:
                found.append((int(a["row"]), int(b["row"]), str(video), str(kind)))
    return found


def run(name: str, spec: Mapping[str, Any], output_csv: PathLike, params: IngestParams) -> int:
    """Write ``videos.csv`` (``output_csv``) and beside it ``intervals.csv``, ``corrections.csv``
    and ``skipped.csv``; returns the number of videos."""
    data = load_long_videos(name, spec, params.on_error, params.errata)
    videos = data.videos.copy()
    if videos["subject"].nunique() < 2:
        raise MerecError(f"long video dataset {name}: fewer than two subjects; leave-one-subject-out needs two")
    shards = len(params.shards)
    videos["fold"] = videos["subject"].str.split("/").str[-1]
    videos["shard"] = [shard_of(video, shards) for video in videos["video"]]
    videos["shards"] = shards
    intervals = _labelled(data.intervals, spec["format"], params.label_set)
    for first, second, video, kind in overlaps(intervals):  # kept: each still needs its own spotted interval
        LOG.warning("%s: rows %d and %d annotate overlapping %s intervals in video %s; both are kept and each needs "
                    "its own spotted interval", name, first, second, kind, video)  # fmt: skip
    out = Path(output_csv)
    lists = pd.DataFrame({
        "dataset": name, "subject": videos["subject"], "fold": videos["fold"], "sample": videos["video"],
        "frames_dir": videos["folder"], "onset": videos["first"], "apex": videos["first"], "offset": videos["last"],
        "label": "", "aus": "",
    })  # fmt: skip
    frames = {row.video: list(list_frames(row.folder).values()) for row in videos.itertuples(index=False)}
    write_clip_lists(lists, video_lists(out), params.shards, workers=available_threads(), frames=frames)
    write_csv(out.with_name("intervals.csv"), intervals)
    write_csv(out.with_name("corrections.csv"), data.corrections)
    write_csv(out.with_name("skipped.csv"), data.skipped)
    write_csv(out, videos)
    counts = intervals["type"].value_counts().to_dict()
    LOG.info("%s: %d videos of %d subjects (%d frames), intervals %s; %d rows skipped, %d corrections", name,
             len(videos), videos["subject"].nunique(), int(videos["frames"].sum()), counts, len(data.skipped),
             len(data.corrections))  # fmt: skip
    return len(videos)


def video_lists(videos_csv: PathLike) -> Path:
    """The folder of per-shard video lists beside ``videos.csv``."""
    return Path(videos_csv).with_name("videos")


def read_videos(videos_csv: PathLike) -> pd.DataFrame:
    """The videos table this stage wrote, with string ids."""
    return pd.read_csv(videos_csv, dtype={"video": str, "subject": str, "fold": str, "folder": str})


def read_intervals(videos_csv: PathLike) -> pd.DataFrame:
    """The annotated intervals written beside ``videos.csv``."""
    path = Path(videos_csv).with_name("intervals.csv")
    if not path.is_file():
        raise MerecError(f"{path} is missing; rerun the long-video ingest stage")
    table = pd.read_csv(path, dtype={"video": str, "subject": str, "fold": str, "emotion": str, "label": str,
                                     "aus": str}, keep_default_na=False)  # fmt: skip
    return table
