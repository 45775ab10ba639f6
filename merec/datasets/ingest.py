"""Ingest stage: a dataset's annotations and frames become ``samples.csv`` + ``classes.json``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from merec.config import Params
from merec.datasets.clips import write_clip_lists
from merec.datasets.formats import load_samples
from merec.datasets.labels import label_classes
from merec.datasets.validation import FOLD_DROPPED
from merec.errors import MerecError
from merec.io import PathLike, write_csv, write_json
from merec.runtime import available_threads

LOG = logging.getLogger("merec.ingest")


@dataclass(frozen=True)
class IngestParams(Params):
    """The ``ingest`` section: the ``label_set`` (3class | emotion), ``on_error`` (fail | skip) and
    the ``shards`` the per-sample stages run in (``0, 1, ..., n-1``; see :mod:`merec.shards`)."""

    section = "ingest"
    label_set: str
    on_error: str
    shards: tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.shards) != list(range(len(self.shards))):
            raise MerecError(
                f"ingest.shards must list 0, 1, ..., n-1 (n shards), got {list(self.shards)}; "
                f"e.g. {list(range(len(self.shards)))}"
            )


def run(name: str, spec: Mapping[str, Any], output_csv: PathLike, params: IngestParams) -> int:
    """Write the samples table, its fixed class list and the skipped rows next to ``output_csv``.

    ``name`` is the dataset's name and ``spec`` its ``datasets.<name>`` entry.
    """
    label_set = params.label_set
    result = load_samples(name, spec, label_set=label_set, on_error=params.on_error)
    samples = result.samples
    if samples["fold"].nunique() < 2:
        raise MerecError(f"dataset {name}: only one subject; leave-one-subject-out needs at least two")
    out = Path(output_csv)
    classes = label_classes(label_set, spec.get("format"))
    write_clip_lists(samples, clips_folder(out), params.shards, workers=available_threads())
    write_csv(out.with_name("skipped.csv"), result.skipped)
    write_json(out.with_name("classes.json"), {"label_set": label_set, "classes": classes})
    write_csv(out, samples)
    counts = samples["label"].value_counts().to_dict()
    dropped = result.skipped["reason"].str.startswith(FOLD_DROPPED)
    lost = ", ".join(result.skipped.loc[dropped, "subject"])
    LOG.info(
        "%s: %d samples of %d subjects %s; %d rows skipped (listed in %s)%s",
        name, len(samples), samples["fold"].nunique(), counts, int((~dropped).sum()), out.with_name("skipped.csv"),
        f"; FOLDS DROPPED by on_error=skip: {lost}" if lost else "",
    )  # fmt: skip
    return len(samples)


def clips_folder(samples_csv: PathLike) -> Path:
    """The folder of per-shard clip lists beside the samples table (``<interim>/<dataset>/clips``)."""
    return Path(samples_csv).with_name("clips")


def read_samples(samples_csv: PathLike) -> pd.DataFrame:
    """The samples table this stage wrote, with string ids."""
    return pd.read_csv(samples_csv, dtype={"subject": str, "fold": str, "sample": str, "aus": str, "label": str})


def read_classes(samples_csv: PathLike) -> list[str]:
    """The fixed class order this stage wrote next to the samples table."""
    path = Path(samples_csv).with_name("classes.json")
    if not path.is_file():
        raise MerecError(f"{path} is missing; rerun the ingest stage")
    return list(json.loads(path.read_text())["classes"])
