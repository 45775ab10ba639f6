"""``merec predict``: a bundle's pipeline run on one recording, front to back, in bounded memory.

1. **Spotting pass** (skipped for a known interval): the recording is read once, frame by frame,
   through the spotting stage's face tracking and per-frame motion
   (:func:`merec.spotting.features.video_features`, with the bundle's ``spot_features`` params;
   large frames are downscaled for detection only, ``detect_max_side``; two faces in view: the
   largest, then the one tracked, with a warning). The curve of each type is the training-free
   baseline's or, in a bundle with ``spot.method: learned``, the learned spotter's (trained on every
   video of its dataset; the flow maps it reads go to a temporary folder on disk), and the
   intervals follow (:func:`merec.spotting.peaks.spot`, threshold ``spot.p`` of the method).
2. **Recognition pass**: the recording is read again; each spotted micro-expression interval's
   frames are held only until its last frame arrives, then go the training path: face alignment
   on its onset (``face``), interpolation onset..apex (the curve's peak) to N frames
   (``interpolate``), magnification (``magnify``, the bundle's MagNet weights), flow features
   (``features``) and the recogniser, with the training data's input scales. Macro-expression
   intervals are listed, not classified (the recogniser learned micro-expressions).
3. **Outputs** (written together into the output folder; nothing half-written is left):
   ``predictions.csv``, ``summary.json``, ``curve.csv`` (per frame: time, face tracked, both curves)
   and ``report.html`` (:mod:`merec.predict.report`).

With an annotation (``--annotation``: the root folder of a SAMM Long Videos, CAS(ME)^2 or CAS(ME)^3
release as downloaded, read by merec's readers with their errata; or a CSV of intervals, columns
onset, offset and optionally video, type, apex, emotion or label, such as the ``intervals.csv``
that ``merec ingest-lv`` writes), the prediction is scored: spotting precision, recall and F1 per
type (MEGC, IoU >= 0.5) and STRS on the micro-expressions.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import merec
from merec.bundle import MAGNET, RIFE, Bundle, check_params, load_bundle
from merec.datasets.apex import largest_flow_index
from merec.datasets.long_ingest import release_format, release_intervals
from merec.errors import MerecError
from merec.face import FaceParams, align_clip
from merec.features import FeatureParams, sample_features
from merec.interpolate import InterpolateParams, make_interpolator, resample_clip
from merec.io import PathLike, atomic_dir, check_replaceable, write_csv, write_json
from merec.magnify import MagnifyParams, make_magnifier
from merec.predict.report import write_report
from merec.predict.source import Source, open_source
from merec.runtime import peak_memory_mib, progress
from merec.spotting import learned
from merec.spotting.features import SpotFeatureParams, Tracking, gaps, raw_maps, video_features
from merec.spotting.metrics import TYPES, spotting_scores, strs
from merec.spotting.peaks import baseline_curve, spot
from merec.spotting.settings import SpotParams
from merec.train import class_probabilities, model_inputs, sample_inputs, to_tensors

LOG = logging.getLogger("merec.predict")
PREDICTIONS, SUMMARY, CURVE, REPORT = "predictions.csv", "summary.json", "curve.csv", "report.html"
MIN_DETECT_SIDE = 64  # px: below this a frame holds no face dlib's HOG detector can find


@dataclass(frozen=True)
class PredictOptions:
    """What ``merec predict`` is asked beyond the recording and the bundle."""

    fps: float | None = None  #: overrides the recording's frame rate (needed for a folder of frames)
    onset: int | None = None  #: a known interval (frame numbers): spotting is skipped
    apex: int | None = None  #: estimated from the flow when not given
    offset: int | None = None
    annotation: Path | None = None  #: intervals to score the prediction against
    video: str | None = None  #: the annotation's video id (default: the recording's name)
    detect_max_side: int = 640  #: px; frames larger than this are downscaled for face detection only


@dataclass
class Stages:
    """The bundle's params of every stage a recording goes through, and the models built from them."""

    face: FaceParams
    interpolate: InterpolateParams
    magnify: MagnifyParams
    features: FeatureParams
    spot_features: SpotFeatureParams
    spot: SpotParams
    interpolator: Any = field(repr=False)
    magnifier: Any = field(repr=False)

    @classmethod
    def of(cls, bundle: Bundle) -> Stages:
        """Typed params of the bundle, with its own weights in place of the exporting machine's paths."""
        params = {section: dict(values) for section, values in bundle.params.items()}
        trained_on = bundle.manifest["model_context"].get("roi_names")
        if trained_on is not None and trained_on != list(params["features"]["rois"]):
            raise MerecError(
                f"{bundle.path}: its recogniser was trained on ROIs {trained_on}, but its features.rois are "
                f"{list(params['features']['rois'])}: export the bundle again with this merec"
            )
        magnify = params["magnify"]
        if magnify["method"] == "magnet":
            magnify = dict(magnify, magnet={**magnify["magnet"], "checkpoint": str(bundle.path / MAGNET)})
        interpolate = params["interpolate"]
        if interpolate["rife"].get("checkpoint") is not None:
            interpolate = dict(interpolate, rife={**interpolate["rife"], "checkpoint": str(bundle.path / RIFE)})
        interpolate_params = InterpolateParams.from_mapping(interpolate)
        magnify_params = MagnifyParams.from_mapping(magnify)
        return cls(
            FaceParams.from_mapping(params["face"]),
            interpolate_params,
            magnify_params,
            FeatureParams.from_mapping(params["features"]),
            SpotFeatureParams.from_mapping(params["spot_features"]),
            SpotParams.from_mapping(params["spot"]),
            make_interpolator(interpolate_params),
            make_magnifier(magnify_params),
        )


@dataclass
class Recognised:
    """One interval through the recognition path: class probabilities and what the report shows."""

    probabilities: np.ndarray | None
    error: str = ""
    images: dict[str, np.ndarray] = field(default_factory=dict)  #: onset, apex, magnified apex (RGB crops); flow


def spot_recording(
    source: Source,
    stages: Stages,
    tracking: Tracking,
    spotters: Mapping[str, torch.nn.Module] | None = None,
    scratch: PathLike | None = None,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The spotting pass: per-frame arrays (with ``curve_<type>``) and the spotted intervals, by the
    training-free baseline or, given ``spotters`` (per type), the learned spotter (its flow maps go
    to a temporary folder in ``scratch`` on disk, never to memory; removed after)."""
    frames = progress(source.frames(), f"spot {source.name}", total=source.frame_count)
    with tempfile.TemporaryDirectory(prefix=".merec-predict-", dir=scratch) as tmp:
        out = None if spotters is None else Path(tmp) / "maps.npz"
        arrays = video_features(source.name, frames, source.fps, stages.spot_features, out, tracking=tracking)
        curves = {}
        for kind in TYPES:
            k, valid = int(arrays[f"k_{kind}"]), arrays[f"valid_{kind}"]
            if spotters is None:
                curves[kind] = baseline_curve(arrays[f"rois_{kind}"], valid, k, stages.spot.baseline.contrast)
                continue
            maps = raw_maps(out, kind, len(valid), stages.spot_features.map_size)
            data = learned.load_video(source.name, arrays, maps, kind, pd.DataFrame(columns=["type"]))  # no labels
            curves[kind] = learned.curve(spotters[kind], data, "cpu")
    p = stages.spot.threshold
    first = int(arrays["frame_numbers"][0])
    rows = []
    for kind in TYPES:
        k = int(arrays[f"k_{kind}"])
        arrays[f"curve_{kind}"] = curves[kind]
        rows += [(kind, s.onset, s.peak, s.offset, s.score) for s in spot(curves[kind], k, p, first)]
    table = pd.DataFrame(rows, columns=["type", "onset", "apex", "offset", "score"])
    return arrays, table.sort_values(["onset", "type"], kind="stable").reset_index(drop=True)


def interval_frames(source: Source, intervals: list[tuple[int, int]]) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(position in ``intervals``, its frames onset..offset) as soon as each is read; a frame that
    cannot be read takes its predecessor's place (logged); nothing but open intervals is held."""
    if not intervals:
        return
    waiting = sorted(range(len(intervals)), key=lambda i: intervals[i][0])
    pending: dict[int, list[np.ndarray]] = {}
    last: np.ndarray | None = None
    final = max(offset for _, offset in intervals)
    number = None
    with contextlib.closing(source.frames()) as frames:
        for number, frame in frames:
            if frame is not None and last is not None and frame.shape != last.shape:
                LOG.warning("%s: frame %d is %dx%d, the frames before it %dx%d; taken as unreadable", source.path,
                            number, frame.shape[1], frame.shape[0], last.shape[1], last.shape[0])  # fmt: skip
                frame = None
            if frame is None:
                frame = last
            last = frame if frame is not None else last
            while waiting and intervals[waiting[0]][0] <= number:
                pending[waiting.pop(0)] = []
            for index in list(pending):
                if frame is not None:
                    pending[index].append(frame)
                if intervals[index][1] == number:
                    yield index, pending.pop(index)
            if number >= final:
                return
    if pending or waiting:
        ends = ", ".join(f"{intervals[i][0]}-{intervals[i][1]}" for i in [*pending, *waiting])
        raise MerecError(f"{source.path}: interval(s) {ends} end after the last frame read ({number}); "
                         "give --onset/--offset within the recording")  # fmt: skip


def recognise(frames: list[np.ndarray], apex_index: int, name: str, bundle: Bundle, stages: Stages,
              tracking: Tracking) -> Recognised:  # fmt: skip
    """One interval through face -> interpolate -> magnify -> features -> the recogniser."""
    if len(frames) < 2:
        LOG.warning("%s: not recognised: fewer than two of its frames can be read", name)
        return Recognised(None, "fewer than two of its frames can be read")
    apex_index = min(max(apex_index, 1), len(frames) - 1)
    try:
        aligned = align_clip(frames, apex_index, name, stages.face, f"{name}'s onset frame", tracking.max_side,
                             tracking.similar)  # fmt: skip
    except MerecError as exc:
        LOG.warning("%s: not recognised: %s", name, exc)
        return Recognised(None, str(exc))
    crops = aligned["frames"]
    interpolated = resample_clip(crops[: apex_index + 1], stages.interpolate.frames, stages.interpolator)
    magnified = stages.magnifier(interpolated)
    try:
        features = sample_features(magnified, aligned["landmarks"], name, stages.features)
    except MerecError as exc:
        LOG.warning("%s: not recognised: %s", name, exc)
        return Recognised(None, str(exc))
    values = sample_inputs(features)
    wanted = model_inputs(bundle.model)
    absent = [key for key in wanted if key not in values]
    if absent:
        raise MerecError(f"{bundle.path}: its recogniser reads {', '.join(absent)}, which these features lack")
    batch = to_tensors({key: values[key][None] for key in wanted}, np.array([0]), bundle.input_scales, "cpu")
    if bundle.adjacency is not None:
        batch["adjacency"] = torch.from_numpy(bundle.adjacency).float()
    probabilities = class_probabilities(bundle.model, batch)[0]
    images = {"onset": crops[0], "apex": crops[apex_index], "magnified": magnified[-1],
              "flow": features["face"][-1].astype(np.float32)}  # fmt: skip
    return Recognised(probabilities, "", images)


def _known_interval(source: Source, options: PredictOptions) -> pd.DataFrame:
    onset, apex, offset = options.onset, options.apex, options.offset
    if onset is None or offset is None:
        raise MerecError("a known interval needs both --onset and --offset (--apex is optional)")
    if not onset < offset:
        raise MerecError(f"--onset {onset} must come before --offset {offset}")
    if apex is not None and not onset < apex <= offset:
        raise MerecError(f"--apex {apex} must lie after --onset {onset}, at or before --offset {offset}")
    beyond = not source.is_video and source.frame_count and offset >= source.first + source.frame_count
    if onset < source.first or beyond:
        last = source.first + (source.frame_count or 0) - 1
        raise MerecError(f"{source.path}: interval {onset}-{offset} lies outside its frames {source.first}-{last}")
    return pd.DataFrame([("micro", onset, apex, offset, np.nan)], columns=["type", "onset", "apex", "offset", "score"])


def read_annotation(path: PathLike, video: str, label_set: str = "3class") -> pd.DataFrame:
    """The annotated intervals of ``video`` (module docstring): video, type, onset, offset, emotion
    (the class under ``label_set``), from a CSV or from a long-video release's root folder."""
    path = Path(path)
    if path.is_dir():
        table = release_intervals(path, release_format(path), label_set).astype(str)
    elif not path.is_file():
        raise MerecError(f"--annotation {path}: no such file or release folder")
    else:
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MerecError(f"--annotation {path}: not a readable CSV ({exc})") from exc
    missing = [column for column in ("onset", "offset") if column not in table.columns]
    if missing:
        raise MerecError(f"--annotation {path}: no column {', '.join(missing)} (needs onset, offset; optional "
                         "video, type, apex, emotion or label)")  # fmt: skip
    if "video" in table.columns:
        table = table[table["video"] == video]
        if table.empty:
            raise MerecError(f"--annotation {path}: no interval of video {video!r}; name the video with --video")
    kinds = table["type"] if "type" in table.columns else pd.Series("micro", index=table.index)
    out = pd.DataFrame({"video": video, "type": kinds})
    for column in ("onset", "offset"):
        out[column] = pd.to_numeric(table[column], errors="coerce")
    bad = out.index[out[["onset", "offset"]].isna().any(axis=1)]
    if len(bad):
        raise MerecError(f"--annotation {path}: row {int(bad[0]) + 2} has no frame number in onset or offset")
    out[["onset", "offset"]] = out[["onset", "offset"]].astype(int)
    labels = table["label"] if "label" in table.columns else table.get("emotion", pd.Series("", index=table.index))
    out["emotion"] = labels.replace("", None)
    return out.reset_index(drop=True)


def score(truth: pd.DataFrame, predictions: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    """Spotting scores per type and STRS (micro-expressions) of the prediction against the annotation."""
    found = predictions.assign(video=truth["video"].iloc[0] if len(truth) else "")
    result: dict[str, Any] = {"spotting": spotting_scores(truth, found)}
    micro_truth = truth[truth["type"] == "micro"]
    micro = found[found["type"] == "micro"].assign(emotion=found["class"].replace("", None))
    if micro_truth["emotion"].notna().any():
        result["strs"] = strs(micro_truth, micro, classes)
    return result


def predict(
    input_path: PathLike,
    bundle_path: PathLike,
    output: PathLike,
    options: PredictOptions = PredictOptions(),
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the bundle on one recording and write the outputs (module docstring); returns the summary.
    ``params``: a params file's, which must agree with the bundle's (:func:`merec.bundle.check_params`)."""
    started = time.perf_counter()
    if options.detect_max_side < MIN_DETECT_SIDE:
        raise MerecError(f"--detect-max-side must be at least {MIN_DETECT_SIDE} px, got {options.detect_max_side}")
    check_replaceable(output, SUMMARY, "predictions")
    bundle = load_bundle(bundle_path)
    if params:
        check_params(bundle, params)
    source = open_source(input_path, options.fps)
    video = options.video or source.name
    label_set = bundle.manifest.get("label_set", "3class")
    truth = read_annotation(options.annotation, video, label_set) if options.annotation else None
    stages = Stages.of(bundle)
    tracking = Tracking(options.detect_max_side, "largest")
    known = options.onset is not None or options.offset is not None
    arrays: dict[str, np.ndarray] | None = None
    if known:
        intervals = _known_interval(source, options)
    else:
        arrays, intervals = spot_recording(source, stages, tracking, bundle.spotters, Path(output).parent)
    spotted_s = time.perf_counter() - started
    micro = [i for i in intervals.index if intervals.loc[i, "type"] == "micro"]
    # the recognition path reads onset..apex: frames after a known apex are never held
    ends = [intervals.loc[i, "offset" if pd.isna(intervals.loc[i, "apex"]) else "apex"] for i in micro]
    spans = [(int(intervals.loc[i, "onset"]), int(end)) for i, end in zip(micro, ends, strict=True)]
    results: dict[int, Recognised] = {}
    for position, frames in progress(interval_frames(source, spans), "recognise", total=len(spans)):
        row = intervals.loc[micro[position]]
        onset = int(row["onset"])
        if pd.isna(row["apex"]):
            intervals.loc[micro[position], "apex"] = onset + (largest_flow_index(frames) if frames else 0)
        apex_index = int(intervals.loc[micro[position], "apex"]) - onset
        results[micro[position]] = recognise(frames, apex_index, f"{video} {onset}-{row['offset']}", bundle, stages,
                                             tracking)  # fmt: skip
    if not known:
        source.check_timing()
    table = _predictions(intervals, results, bundle.classes, source)
    summary = _summary(source, bundle, table, arrays, known, options, started, spotted_s)
    if truth is not None:
        summary["scores"] = score(truth, table, bundle.classes)
    with atomic_dir(output) as tmp:
        write_csv(Path(tmp) / PREDICTIONS, table)
        if arrays is not None:
            write_csv(Path(tmp) / CURVE, _curve_table(arrays, source))
        write_json(Path(tmp) / SUMMARY, summary)
        write_report(Path(tmp) / REPORT, summary, table, arrays, results, truth, source)
    LOG.info("%d interval(s) (%d micro) in %s; results in %s", len(table), len(micro), source.path, output)
    return summary


def _predictions(intervals: pd.DataFrame, results: Mapping[int, Recognised], classes: list[str],
                 source: Source) -> pd.DataFrame:  # fmt: skip
    table = intervals.copy()
    table.insert(0, "interval", np.arange(1, len(table) + 1))
    table["apex"] = table["apex"].astype("Int64")
    for column in ("onset", "apex", "offset"):
        table[f"{column}_s"] = [np.nan if pd.isna(n) else round(source.seconds(int(n)), 4) for n in table[column]]
    recognised = [results.get(i) for i in intervals.index]
    table["class"] = [classes[int(np.argmax(r.probabilities))] if r and r.probabilities is not None else ""
                      for r in recognised]  # fmt: skip
    for k, name in enumerate(classes):
        table[f"p_{name}"] = [float(r.probabilities[k]) if r and r.probabilities is not None else np.nan
                              for r in recognised]  # fmt: skip
    table["error"] = [r.error if r else "" for r in recognised]
    return table


def _curve_table(arrays: Mapping[str, np.ndarray], source: Source) -> pd.DataFrame:
    numbers = arrays["frame_numbers"]
    out = pd.DataFrame({"frame": numbers, "seconds": [round(source.seconds(int(n)), 4) for n in numbers],
                        "face": arrays["face"]})  # fmt: skip
    for kind in TYPES:
        out[f"curve_{kind}"] = np.round(arrays[f"curve_{kind}"], 5)
    return out


def _summary(source: Source, bundle: Bundle, table: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None,
             known: bool, options: PredictOptions, started: float, spotted_s: float) -> dict[str, Any]:  # fmt: skip
    seconds = time.perf_counter() - started
    frames = len(arrays["frame_numbers"]) if arrays is not None else None
    summary: dict[str, Any] = {
        "input": str(source.path),
        "video": options.video or source.name,
        "bundle": str(bundle.path),
        "model": bundle.manifest["model"],
        "classes": bundle.classes,
        "merec": merec.__version__,
        "fps": source.fps,
        "size": list(source.size),
        "frames": frames,
        "spotting": "known interval (--onset/--offset)"
        if known
        else bundle.manifest.get("spotter", {}).get("method", "baseline"),
        "intervals": {kind: int((table["type"] == kind).sum()) for kind in TYPES},
        "recognised": int((table["class"] != "").sum()),
        "class_counts": {name: int((table["class"] == name).sum()) for name in bundle.classes},
        "seconds": round(seconds, 3),
        "spotting_seconds": round(spotted_s, 3),
        "peak_memory_mib": round(peak_memory_mib()[0], 1),
    }
    if arrays is not None:
        p = SpotParams.from_mapping(bundle.params["spot"]).p
        summary["spot_threshold_p"] = p.learned if bundle.spotters else p.baseline
        summary["face_gaps"] = [list(gap) for gap in gaps(arrays["face"], arrays["frame_numbers"])]
        summary["frames_per_second"] = round(frames / seconds, 2) if seconds > 0 else None
    return summary
