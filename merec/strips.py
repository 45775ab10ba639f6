"""Frame strips for the report: interpolated vs magnified frames of a few samples.

For each chosen sample one PNG with three rows over the same frames (onset to apex):

1. the interpolated frames (the ``interpolate`` stage: aligned, unmagnified),
2. the magnified frames (the ``magnify`` stage),
3. the magnified frame minus the magnified onset (mean over colour channels), multiplied by
   ``report.diff_gain`` and shown on a diverging colour map, so that sub-pixel motion is visible.

Samples are chosen deterministically: samples of ``samples.csv`` present in both stage folders,
sorted by id within each class, taken round-robin over the class list of ``classes.json`` (the
first sample of every class, then the second of every class, ...) until ``report.strips`` are
chosen. Reads ``<interpolated>/<sample>.npz`` and ``<magnified>/<sample>.npz`` (array ``frames``,
(T, H, W, 3) uint8 RGB, frame 0 the onset) and writes into ``output_dir`` (atomically, as a
whole): ``<sample>.png`` per chosen sample and ``strips.csv`` listing them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from merec.config import Params
from merec.datasets.ingest import read_classes, read_samples
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, load_npz, write_csv
from merec.runtime import progress
from merec.shards import read_stage, stage_samples

LOG = logging.getLogger("merec.strips")
INDEX = "strips.csv"
INDEX_COLUMNS = ["sample", "subject", "label", "file", "frames"]


@dataclass(frozen=True)
class StripParams(Params):
    """The ``report`` section of params.yaml.

    ``strips``: samples to draw; ``frames``: frames shown per row, evenly spaced from onset to apex
    (0 = every frame); ``diff_gain``: factor on the magnified-minus-onset difference.
    """

    section = "report"
    strips: int
    frames: int
    diff_gain: float


def _stage(paths: Sequence[PathLike] | PathLike, stage: str) -> dict[str, Path]:
    """Sample -> archive of a per-sample stage (its folder or shard manifests)."""
    try:
        return stage_samples(read_stage(paths))
    except MerecError as exc:
        raise MerecError(f"the {stage} stage's output is not complete ({exc}); run the {stage} stage first") from exc


def _read_table(samples_csv: PathLike) -> tuple[pd.DataFrame, list[str]]:
    """The samples table and the class order the ingest stage wrote."""
    if not Path(samples_csv).is_file():
        raise MerecError(f"{samples_csv}: samples table is missing; run the ingest stage first")
    return read_samples(samples_csv), read_classes(samples_csv)


def choose_samples(
    table: pd.DataFrame, classes: Sequence[str], available: set[str], count: int
) -> list[dict[str, str]]:
    """Up to ``count`` rows of ``table`` whose sample is in ``available``: round-robin over ``classes``.

    Within a class samples are taken in order of their id, so the choice depends only on the data.
    """
    queues = []
    for label in classes:
        rows = table[(table["label"] == label) & table["sample"].isin(available)].sort_values("sample")
        queues.append([{k: str(v) for k, v in row.items()} for _, row in rows.iterrows()])
    chosen: list[dict[str, str]] = []
    depth = 0
    while len(chosen) < count and any(len(queue) > depth for queue in queues):
        chosen.extend(queue[depth] for queue in queues if len(queue) > depth)
        depth += 1
    return chosen[:count]


def frame_indices(n_frames: int, shown: int) -> np.ndarray:
    """``shown`` indices evenly spaced from the first frame to the last (all of them when ``shown`` is 0)."""
    if shown == 0 or shown >= n_frames:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, shown)).astype(int))


def _load_frames(path: Path) -> np.ndarray:
    frames = load_npz(path).get("frames")
    if frames is None or frames.ndim != 4 or frames.shape[-1] != 3:
        raise MerecError(f"{path}: no 'frames' array of shape (T, H, W, 3); rerun the stage that made it")
    return frames


def render_strip(
    original: np.ndarray, magnified: np.ndarray, title: str, path: PathLike, params: StripParams
) -> list[int]:
    """Draw the three-row strip of one sample into ``path`` (PNG); returns the frame indices shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if original.shape != magnified.shape:
        raise MerecError(
            f"{title}: interpolated frames {original.shape} and magnified frames {magnified.shape} differ; "
            "rerun the magnify stage"
        )
    shown = frame_indices(len(original), params.frames)
    difference = magnified.astype(np.float32).mean(axis=-1) - magnified[0].astype(np.float32).mean(axis=-1)
    limit = 255.0 / params.diff_gain
    rows = (
        ("interpolated", [original[i] for i in shown], {}),
        ("magnified", [magnified[i] for i in shown], {}),
        (f"magnified − onset\n× {params.diff_gain:g}", [difference[i] for i in shown], {"cmap": "RdBu_r"}),
    )
    figure, axes = plt.subplots(3, len(shown), figsize=(1.3 * len(shown) + 0.4, 4.4), dpi=100, squeeze=False)
    for r, (name, images, style) in enumerate(rows):
        for c, image in enumerate(images):
            axis = axes[r, c]
            if style:
                axis.imshow(image, vmin=-limit, vmax=limit, **style)
            else:
                axis.imshow(image)
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                where = " (onset)" if shown[c] == 0 else " (apex)" if shown[c] == len(original) - 1 else ""
                axis.set_title(f"frame {shown[c]}{where}", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
    return [int(i) for i in shown]


def run(
    samples_csv: PathLike,
    interpolated_stage: Sequence[PathLike] | PathLike,
    magnified_stage: Sequence[PathLike] | PathLike,
    output_dir: PathLike,
    params: StripParams,
) -> pd.DataFrame:
    """Write the strips of a few samples (see the module docstring); returns the ``strips.csv`` table.

    ``interpolated_stage`` and ``magnified_stage``: those stages' folders or shard manifests.
    """
    table, classes = _read_table(samples_csv)
    interpolated = _stage(interpolated_stage, "interpolate")
    magnified = _stage(magnified_stage, "magnify")
    available = set(interpolated) & set(magnified)
    chosen = choose_samples(table, classes, available, params.strips)
    if not chosen:
        raise MerecError(
            f"no sample of {samples_csv} has frames in both the interpolate and the magnify stage; rerun those stages"
        )
    if len(chosen) < params.strips:
        LOG.warning("only %d sample(s) available for %d strips", len(chosen), params.strips)
    rows = []
    with atomic_dir(output_dir) as tmp:
        for row in progress(chosen, "strips"):
            sample = row["sample"]
            title = f"sample {sample} (subject {row['subject']}, class {row['label']})"
            file = f"{sample}.png"
            shown = render_strip(
                _load_frames(interpolated[sample]), _load_frames(magnified[sample]), title, Path(tmp) / file, params
            )
            rows.append({**{k: row[k] for k in ("sample", "subject", "label")}, "file": file, "frames": shown})
        index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        index["frames"] = index["frames"].map(lambda values: " ".join(map(str, values)))
        write_csv(Path(tmp) / INDEX, index)
    LOG.info("wrote %d frame strip(s) to %s", len(rows), output_dir)
    return index
