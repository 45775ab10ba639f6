"""Spot-then-recognize: the spotted micro-expressions go through the recognition path, then STRS.

**The clips dataset** (:func:`write_clips`, stage ``spot_clips``). From a long-video dataset
``<lv>`` and its spotting run, a short-clip dataset ``<lv>-spotted`` in the ingest stage's layout
(``samples.csv``, ``classes.json``, ``skipped.csv``, ``clips/shard-<k>.json``), so the face,
interpolate, magnify, features, AU-graph and training stages run on it unchanged:

* every annotated micro-expression with a label (``ingest.label_set``): onset, apex and offset as
  annotated (an apex not annotated follows ``ingest.missing_apex``: estimated from the flow, as
  ingest does, or the clip skipped, or an error). These are what the recogniser of each LOSO fold
  is fitted on (training subjects only);
* every spotted micro interval that overlaps a labelled annotated micro-expression of its video
  with IoU >= 0.5 (the MEGC true-positive rule; over every spotting seed, each interval once):
  onset and offset as spotted, the apex at the curve's peak, the label of the best-overlapping
  annotation. These rows are ``predict_only``: never fitted, validated or put into an AU graph;
  each is only predicted by the recogniser of its own subject's fold.

The folds are the long-video dataset's subjects, the same as the spotter's, so the recogniser
that labels a subject's spotted intervals never saw that subject, and the intervals of the
training subjects (spotted by spotters that did see the held-out subject) are never fitted on.

**STRS** (:func:`strs_report`, stage ``spot_strs``): for every spotting seed and training seed,
the spotted micro intervals carry the class their fold's recogniser gave them (intervals that
match no annotation carry none: no count depends on it), and :func:`merec.spotting.metrics.strs`
scores them against the annotated micro-expressions, as defined and in ``compat`` mode.
``strs.json`` gives the mean, sd and per-pair values, and, for orientation, the recogniser's
UF1/UAR on the annotated clips (the analysis F1 that perfect spotting would allow).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merec.config import spotted_dataset
from merec.datasets.apex import flow_apex
from merec.datasets.clips import write_clip_lists
from merec.datasets.frames import fill_gaps, list_frames
from merec.datasets.ids import sample_id
from merec.datasets.ingest import PREDICT_ONLY, clips_folder, read_classes, read_samples
from merec.datasets.long_ingest import label_classes_of, read_intervals, read_videos
from merec.datasets.settings import IngestParams
from merec.datasets.validation import SAMPLE_COLUMNS, SKIPPED_COLUMNS
from merec.errors import MerecError
from merec.io import PathLike, write_csv, write_json
from merec.runs import read_predictions
from merec.runtime import available_threads
from merec.scores import mean_sd, scores
from merec.spotting.metrics import IOU_THRESHOLD, interval_iou, strs
from merec.spotting.stage import read_spotted

LOG = logging.getLogger("merec.spotting")
CLIP_COLUMNS = [*SAMPLE_COLUMNS, PREDICT_ONLY, "video", "truth_row"]


# ----------------------------------------------------------------------------------- clips dataset


def _best_match(spotted: pd.Series, truth: pd.DataFrame) -> pd.Series | None:
    """The labelled annotation of the interval's video with the largest IoU, if that IoU is >= 0.5."""
    best, best_iou = None, 0.0
    for _, gt in truth[truth["video"] == spotted["video"]].iterrows():
        iou = interval_iou(int(gt["onset"]), int(gt["offset"]), int(spotted["onset"]), int(spotted["offset"]))
        if iou > best_iou:
            best, best_iou = gt, iou
    return best if best_iou >= IOU_THRESHOLD else None


def _frame_or_none(value: object) -> int | None:
    """An apex cell of ``intervals.csv``: None when not annotated (empty)."""
    text = str(value).strip()
    return None if text in ("", "nan", "None", "<NA>") else int(float(text))


def spotted_key(video: str, onset: int, offset: int, peak: int) -> str:
    """The sample id part of a spotted interval (its video and frames)."""
    return f"{video}-spot{onset}-{offset}-{peak}"


def clip_rows(name: str, videos: pd.DataFrame, truth: pd.DataFrame, spotted: pd.DataFrame) -> pd.DataFrame:
    """The rows of the clips dataset (module docstring), before their frames are checked."""
    folder = dict(zip(videos["video"], videos["folder"], strict=True))
    labelled = truth[(truth["type"] == "micro") & (truth["label"] != "")]
    rows = []
    for gt in labelled.itertuples(index=False):
        rows.append({
            "subject": gt.subject, "fold": gt.fold, "clip": f"{gt.video}-row{gt.row}", "video": gt.video,
            "onset": int(gt.onset), "apex": _frame_or_none(gt.apex), "offset": int(gt.offset), "emotion": gt.emotion,
            "label": gt.label, "aus": gt.aus, "truth_row": int(gt.row), PREDICT_ONLY: 0,
        })  # fmt: skip
    micro = spotted[spotted["type"] == "micro"].drop_duplicates(["video", "onset", "offset", "peak"])
    for _, item in micro.sort_values(["video", "onset", "offset", "peak"]).iterrows():
        gt = _best_match(item, labelled)
        if gt is None:
            continue
        onset, offset = int(item["onset"]), int(item["offset"])
        rows.append({
            "subject": gt["subject"], "fold": gt["fold"], "video": item["video"], "onset": onset, "offset": offset,
            "clip": spotted_key(item["video"], onset, offset, int(item["peak"])),
            "apex": min(max(int(item["peak"]), onset), offset), "emotion": gt["emotion"], "label": gt["label"],
            "aus": gt["aus"], "truth_row": int(gt["row"]), PREDICT_ONLY: 1,
        })  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=CLIP_COLUMNS)
    table = pd.DataFrame(rows)
    table["dataset"] = name
    table["sample"] = [sample_id(s, c) for s, c in zip(table["subject"], table["clip"], strict=True)]
    table["frames_dir"] = table["video"].map(folder)
    table["action_units"] = table["aus"]
    return table[CLIP_COLUMNS].reset_index(drop=True)


def write_clips(
    long_videos: str, fmt: str, videos_csv: PathLike, spotted_csv: PathLike, output_csv: PathLike, params: IngestParams
) -> int:
    """Write the clips dataset of ``long_videos`` (module docstring); returns the number of clips."""
    name = spotted_dataset(long_videos)
    videos, truth, spotted = read_videos(videos_csv), read_intervals(videos_csv), read_spotted(spotted_csv)
    table = clip_rows(name, videos, truth, spotted)
    frames_of = {video: list_frames(folder) for video, folder in zip(videos["video"], videos["folder"], strict=True)}
    frames, kept, skipped, estimated = {}, [], [], []

    def skip(row: pd.Series, reason: str) -> None:
        skipped.append({"dataset": name, "row": row["truth_row"], "subject": row["subject"], "sample": row["sample"],
                        "reason": reason})  # fmt: skip

    for position, row in table.iterrows():
        present = frames_of[row["video"]]
        if row["onset"] not in present or row["offset"] not in present:
            skip(row, f"frame {row['onset'] if row['onset'] not in present else row['offset']} of the clip is missing")
            continue
        paths = fill_gaps(present, int(row["onset"]), int(row["offset"]))
        if pd.isna(row["apex"]):  # an annotated interval without an apex: ingest.missing_apex
            if params.missing_apex == "fail":
                raise MerecError(
                    f"{name}: row {row['truth_row']} (video {row['video']}) has no apex; set ingest.missing_apex: "
                    "estimate to estimate it from the frames, or skip"
                )
            if params.missing_apex == "skip":
                skip(row, "apex is not annotated; ingest.missing_apex: skip")
                continue
            table.loc[position, "apex"] = int(row["onset"]) + flow_apex(paths)
            estimated.append(row["sample"])
        frames[row["sample"]] = paths
        kept.append(position)
    table = table.loc[kept].reset_index(drop=True)
    table["apex"] = table["apex"].astype(int)
    if estimated:
        LOG.info("%s: apex estimated from the flow for %d annotated clip(s) without one: %s", name, len(estimated),
                 ", ".join(estimated[:10]))  # fmt: skip
    fitted = table[table[PREDICT_ONLY] == 0]
    if fitted["fold"].nunique() < 2:
        raise MerecError(
            f"long video dataset {long_videos}: labelled micro-expressions in fewer than two subjects; the recogniser "
            "of spotted intervals needs leave-one-subject-out over at least two"
        )
    out = Path(output_csv)
    write_clip_lists(table, clips_folder(out), params.shards, workers=available_threads(), frames=frames)
    write_csv(out.with_name("skipped.csv"), pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))
    write_json(out.with_name("classes.json"), {"label_set": params.label_set,
                                               "classes": label_classes_of(fmt, params.label_set)})  # fmt: skip
    write_csv(out, table)
    spotted_rows = int(table[PREDICT_ONLY].sum())
    LOG.info("%s: %d annotated micro-expression clips of %d subjects to fit on, %d spotted true-positive intervals "
             "to recognise; %d clip(s) skipped (listed in %s)", name, len(table) - spotted_rows,
             fitted["fold"].nunique(), spotted_rows, len(skipped), out.with_name("skipped.csv"))  # fmt: skip
    return len(table)


# -------------------------------------------------------------------------------------------- STRS


def _mean_sd(values: Sequence[float]) -> dict[str, Any]:
    mean, sd = mean_sd(values) if len(values) else (0.0, 0.0)
    return {"mean": mean, "sd": sd, "values": [float(v) for v in values]}


def annotated_scores(predictions: pd.DataFrame, classes: Sequence[str]) -> dict[str, float]:
    """UF1 and UAR of the recogniser on annotated clips (pooled over the folds of one seed)."""
    found = scores(predictions["label"].astype(str), predictions["predicted"].astype(str), classes)
    return {"uf1": found["uf1"], "uar": found["uar"]}


def recognised_intervals(spotted: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The micro intervals of one spotting seed, each with the class the recogniser gave it as its
    ``emotion`` (None: not recognised, as every interval that matches no annotation)."""
    predicted = dict(zip(predictions["sample"], predictions["predicted"], strict=True))
    micro = spotted[spotted["type"] == "micro"].reset_index(drop=True)
    micro["emotion"] = [
        predicted.get(sample_id(row.subject, spotted_key(row.video, row.onset, row.offset, row.peak)))
        for row in micro.itertuples(index=False)
    ]
    return micro


def strs_report(
    videos_csv: PathLike,
    spotted_csv: PathLike,
    samples_csv: PathLike,
    folds_dir: PathLike,
    output: PathLike,
    seeds: Sequence[int] | None = None,
    dataset: str = "",
) -> dict[str, Any]:
    """STRS of every (spotting seed, training seed) pair, as defined and in compat mode, into ``output``."""
    truth = read_intervals(videos_csv)
    micro_truth = truth[truth["type"] == "micro"].reset_index(drop=True)
    micro_truth["emotion"] = micro_truth["label"].where(micro_truth["label"] != "", None)
    spotted = read_spotted(spotted_csv)
    samples = read_samples(samples_csv)
    classes = read_classes(samples_csv)
    predictions = read_predictions(folds_dir, sorted(samples["fold"].unique()), seeds)
    missing = sorted(set(samples["sample"]) - set(predictions["sample"]))
    if missing:
        LOG.warning("%d clip(s) have no prediction (an earlier stage left them out): %s; their intervals count as "
                    "not recognised", len(missing), ", ".join(missing[:10]))  # fmt: skip
    fitted = set(samples.loc[samples[PREDICT_ONLY] == 0, "sample"])
    pairs, per_pair, annotated = [], {}, {}
    for train_seed, seed_predictions in predictions.groupby("seed", sort=True):
        annotated[str(train_seed)] = annotated_scores(seed_predictions[seed_predictions["sample"].isin(fitted)],
                                                      classes)  # fmt: skip
        for spot_seed, seed_spotted in spotted.groupby("seed", sort=True):
            recognised = recognised_intervals(seed_spotted, seed_predictions)
            defined = strs(micro_truth, recognised, classes)
            compat = strs(micro_truth, recognised, compat=True)
            pairs.append((int(spot_seed), int(train_seed)))
            per_pair[f"spot-{spot_seed}/train-{train_seed}"] = {"defined": defined, "compat": compat}
    if not pairs:
        raise MerecError(f"{spotted_csv}: no spotted intervals and no predictions to score")

    def summary(mode: str) -> dict[str, Any]:
        runs = [per_pair[f"spot-{a}/train-{b}"][mode] for a, b in pairs]
        return {
            "strs": _mean_sd([r["strs"] for r in runs]),
            "spotting_f1": _mean_sd([r["spotting"]["f1"] for r in runs]),
            "analysis_f1": _mean_sd([r["analysis"]["f1"] for r in runs]),
        }

    report = {
        "dataset": dataset,
        "classes": list(classes),
        "pairs": [{"spot_seed": a, "train_seed": b} for a, b in pairs],
        "micro_intervals": len(micro_truth),
        "labelled_micro_intervals": int(micro_truth["emotion"].notna().sum()),
        "recognised_intervals": int(samples[PREDICT_ONLY].sum()),
        "defined": summary("defined"),
        "compat": summary("compat"),
        "annotated_clips": annotated,
        "per_pair": per_pair,
    }
    write_json(output, report)
    first = report["defined"]
    LOG.info("%s STRS %.3f (spotting F1 %.3f x analysis F1 %.3f, mean of %d pair(s) of seeds); compat STRS %.3f; "
             "recogniser on annotated clips UF1 %.3f", dataset, first["strs"]["mean"], first["spotting_f1"]["mean"],
             first["analysis_f1"]["mean"], len(pairs), report["compat"]["strs"]["mean"],
             float(np.mean([a["uf1"] for a in annotated.values()])))  # fmt: skip
    return report
