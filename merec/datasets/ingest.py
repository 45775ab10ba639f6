"""Ingest stage: a dataset's annotations and frames become ``samples.csv`` + ``classes.json``.

``IngestParams`` (the ``ingest`` section) lives in :mod:`merec.datasets.settings`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merec.datasets.clips import write_clip_lists
from merec.datasets.formats import load_samples
from merec.datasets.labels import label_classes
from merec.datasets.settings import IngestParams
from merec.datasets.validation import FOLD_DROPPED
from merec.errors import MerecError
from merec.io import PathLike, write_csv, write_json
from merec.runtime import available_threads

LOG = logging.getLogger("merec.ingest")
__all__ = ["PREDICT_ONLY", "IngestParams", "clips_folder", "fitting_rows", "read_classes", "read_samples", "run"]
# Optional samples-table column: 1 marks a sample that is only ever predicted, in its own subject's fold,
# and never fitted, validated or counted in an AU graph (the spotted intervals of spot-then-recognize).
PREDICT_ONLY = "predict_only"


def run(name: str, spec: Mapping[str, Any], output_csv: PathLike, params: IngestParams) -> int:
    """Write the samples table, its fixed class list, the skipped rows and the corrections made
    next to ``output_csv``.

    ``name`` is the dataset's name and ``spec`` its ``datasets.<name>`` entry.
    """
    label_set = params.label_set
    result = load_samples(name, spec, params)
    samples = result.samples
    if samples["fold"].nunique() < 2:
        raise MerecError(f"dataset {name}: only one subject; leave-one-subject-out needs at least two")
    out = Path(output_csv)
    classes = label_classes(label_set, spec.get("format"))
    write_clip_lists(samples, clips_folder(out), params.shards, workers=available_threads(), frames=result.frames)
    write_csv(out.with_name("skipped.csv"), result.skipped)
    write_csv(out.with_name("corrections.csv"), result.corrections)
    write_json(out.with_name("classes.json"), {"label_set": label_set, "classes": classes})
    write_csv(out, samples)
    counts = samples["label"].value_counts().to_dict()
    dropped = result.skipped["reason"].str.startswith(FOLD_DROPPED)
    lost = ", ".join(result.skipped.loc[dropped, "subject"])
    LOG.info(
        "%s: %d samples of %d subjects %s; %d rows skipped (listed in %s); %d corrections made (listed in %s)%s",
        name, len(samples), samples["fold"].nunique(), counts, int((~dropped).sum()), out.with_name("skipped.csv"),
        len(result.corrections), out.with_name("corrections.csv"),
        f"; FOLDS DROPPED by on_error=skip: {lost}" if lost else "",
    )  # fmt: skip
    for source, count in result.corrections["source"].value_counts().sort_index().items():
        LOG.info("%s: %d correction(s): %s", name, count, source)
    return len(samples)


def clips_folder(samples_csv: PathLike) -> Path:
    """The folder of per-shard clip lists beside the samples table (``<interim>/<dataset>/clips``)."""
    return Path(samples_csv).with_name("clips")


def read_samples(samples_csv: PathLike) -> pd.DataFrame:
    """The samples table this stage wrote, with string ids."""
    return pd.read_csv(
        samples_csv, dtype={"subject": str, "fold": str, "sample": str, "aus": str, "label": str, "video": str}
    )


def fitting_rows(samples: pd.DataFrame) -> np.ndarray:
    """Which rows a model may be fitted on when their subject is not held out (all but ``predict_only``)."""
    if PREDICT_ONLY not in samples.columns:
        return np.ones(len(samples), dtype=bool)
    return samples[PREDICT_ONLY].fillna(0).astype(int).to_numpy() == 0


def read_classes(samples_csv: PathLike) -> list[str]:
    """The fixed class order this stage wrote next to the samples table."""
    path = Path(samples_csv).with_name("classes.json")
    if not path.is_file():
        raise MerecError(f"{path} is missing; rerun the ingest stage")
    return list(json.loads(path.read_text())["classes"])
