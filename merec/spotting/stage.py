"""The spotting stages: score curves (training-free baseline, or the learned spotter per LOSO fold),
then intervals, MEGC metrics, a random-interval control and the plots.

* :func:`score_baseline` writes one curves file for every video (:func:`merec.spotting.peaks.baseline_curve`).
* :func:`score_learned` trains the learned spotter (:mod:`merec.spotting.learned`) on every subject
  but the fold's and writes the held-out subject's curves; one job per fold and seed.
* :func:`evaluate` reads the curves, spots intervals per video and type (:func:`merec.spotting.peaks.spot`,
  threshold ``spot.p``), scores them against the annotations (:func:`merec.spotting.metrics.spotting_scores`)
  per seed, and writes ``intervals.csv``, ``spot_metrics.json``, ``curves.csv`` and ``curves.png``.

**Random-interval control.** For each of ``control_draws`` draws (seeded by ``spot.seed``), every
predicted interval of the first seed is moved to a uniformly random place in its video (same
length, same type). Its F1 is what spotting scores when the intervals carry no information about
where the expressions are; the report gives its mean and 95% range, and whether the spotter's
F1 lies above that range.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merec.datasets.long_ingest import read_intervals, read_videos
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, load_npz, save_npz, write_csv, write_json
from merec.shards import read_stage, stage_samples
from merec.spotting.features import load_maps
from merec.spotting.metrics import TYPES, match_intervals, spotting_scores
from merec.spotting.peaks import baseline_curve, spot, threshold
from merec.spotting.settings import SpotParams

LOG = logging.getLogger("merec.spotting")
Curves = dict[tuple[str, str], tuple[np.ndarray, int]]  # (video, type) -> (curve, k)


# ------------------------------------------------------------------------------------ curves files


def write_curves(path: PathLike, curves: Curves, seed: int, method: str) -> None:
    """A curves file: per video and type its curve and flow step, the seed and the method."""
    arrays: dict[str, Any] = {"seed": np.int64(seed), "method": np.array(method)}
    for (video, kind), (values, k) in sorted(curves.items()):
        arrays[f"curve::{video}::{kind}"] = values.astype(np.float32)
        arrays[f"k::{video}::{kind}"] = np.int64(k)
    save_npz(path, **arrays)


def read_curves(paths: Sequence[PathLike]) -> dict[int, Curves]:
    """Seed -> the curves of every video, from one or more curves files (a folder: every file in it)."""
    files: list[Path] = []
    for item in map(Path, paths):
        files += sorted(item.rglob("curves.npz")) if item.is_dir() else [item]
    if not files:
        raise MerecError(f"no curves files in {', '.join(map(str, paths))}; run the spotting score stage")
    out: dict[int, Curves] = {}
    for path in files:
        arrays = load_npz(path)
        seed = int(arrays["seed"])
        for key, values in arrays.items():
            if key.startswith("curve::"):
                _, video, kind = key.split("::")
                if (video, kind) in out.setdefault(seed, {}):
                    raise MerecError(f"{path}: video {video} ({kind}) is also in another curves file of seed {seed}")
                out[seed][(video, kind)] = (values.astype(np.float64), int(arrays[f"k::{video}::{kind}"]))
    return out


def feature_archives(features: Sequence[PathLike]) -> dict[str, Path]:
    """Video -> its feature archive, over every shard of the spot_features stage."""
    return stage_samples(read_stage(list(features)))


def _needed(videos: pd.DataFrame, archives: dict[str, Path]) -> None:
    missing = sorted(set(videos["video"]) - set(archives))
    if missing:
        raise MerecError(f"no spotting features for video(s) {', '.join(missing[:5])}; rerun spot_features")


# ------------------------------------------------------------------------------------------ scoring


def score_baseline(videos_csv: PathLike, features: Sequence[PathLike], folder: PathLike, params: SpotParams) -> int:
    """Baseline curves of every video into ``<folder>/curves.npz``."""
    output = Path(folder) / "curves.npz"
    videos = read_videos(videos_csv)
    archives = feature_archives(features)
    _needed(videos, archives)
    curves: Curves = {}
    for video in videos["video"]:
        arrays = load_npz(archives[video])
        for kind in TYPES:
            k = int(arrays[f"k_{kind}"])
            curves[(video, kind)] = (
                baseline_curve(arrays[f"rois_{kind}"], arrays[f"valid_{kind}"], k, params.baseline.contrast),
                k,
            )
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_curves(output, curves, 0, "baseline")
    LOG.info("baseline curves of %d videos written to %s", len(videos), output)
    return len(videos)


LearnedInputs = tuple[pd.DataFrame, dict[tuple[str, str], Any]]  # the videos table; (video, type) -> VideoData


def _learned_inputs(videos_csv: PathLike, features: Sequence[PathLike]) -> LearnedInputs:
    """The videos table and each video's learned-spotter data per type (labels, scale; maps memory-mapped)."""
    from merec.spotting import learned

    videos = read_videos(videos_csv)
    truth = read_intervals(videos_csv)
    archives = feature_archives(features)
    _needed(videos, archives)
    data = {}
    for video in videos["video"]:
        arrays = load_npz(archives[video])
        for kind in TYPES:
            maps = load_maps(archives[video], kind)
            data[(video, kind)] = learned.load_video(video, arrays, maps, kind, truth[truth["video"] == video])
    return videos, data


def score_learned(
    videos_csv: PathLike,
    features: Sequence[PathLike],
    folder: PathLike,
    params: SpotParams,
    fold: str,
    seed: int,
    inputs: LearnedInputs | None = None,
) -> int:
    """Train the learned spotter on every subject but ``fold`` (per type) and write the fold's curves
    to ``<folder>/seed-<seed>/<fold>/curves.npz`` (``inputs``: :func:`_learned_inputs`, when loaded already)."""
    from merec.runtime import configure_torch, resolve_device, seed_everything
    from merec.spotting import learned

    output = curves_path(folder, seed, fold)
    videos, data = inputs or _learned_inputs(videos_csv, features)
    if fold not in set(videos["fold"]):
        raise MerecError(
            f"fold {fold!r} is not a subject of {videos_csv} (folds: {', '.join(sorted(set(videos['fold'])))})"
        )
    options = params.learned
    device = resolve_device(options.device)
    configure_torch()
    training_videos = videos.loc[videos["fold"] != fold, "video"]
    curves: Curves = {}
    for kind in TYPES:
        seed_everything(seed, device)
        training = [data[(video, kind)] for video in training_videos]
        map_size = int(training[0].maps.shape[-1])
        LOG.info("fold %s, seed %d, %s: training on %d videos of %d subjects", fold, seed, kind, len(training),
                 videos.loc[videos["fold"] != fold, "fold"].nunique())  # fmt: skip
        model = learned.train(training, options, seed, map_size, device)
        for video in videos.loc[videos["fold"] == fold, "video"]:
            held_out = data[(video, kind)]
            curves[(video, kind)] = (learned.curve(model, held_out, device), held_out.k)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_curves(output, curves, seed, "learned")
    return len(curves)


SPOTTER_INFO = "spotter.json"


def spotter_file(folder: PathLike, kind: str) -> Path:
    """The learned spotter's weights of one type in a spotter folder (:func:`train_spotter`)."""
    return Path(folder) / f"spotter-{kind}.pt"


def train_spotter(videos_csv: PathLike, features: Sequence[PathLike], folder: PathLike, params: SpotParams) -> int:
    """The learned spotter trained on every video (per type), one per seed of ``spot.learned.seeds``:
    ``<folder>/seed-<S>/spotter-<type>.pt`` (state dicts) and ``spotter.json``, for a bundle
    (:mod:`merec.bundle`); never one of the LOSO folds' spotters."""
    from merec.checkpoints import save_state_dict
    from merec.runtime import configure_torch, resolve_device, seed_everything
    from merec.spotting import learned

    videos, data = _learned_inputs(videos_csv, features)
    options = params.learned
    device = resolve_device(options.device)
    configure_torch()
    for seed in options.seeds:
        with atomic_dir(Path(folder) / f"seed-{seed}") as tmp:
            map_size = 0
            for kind in TYPES:
                seed_everything(seed, device)
                training = [data[(video, kind)] for video in videos["video"]]
                map_size = int(training[0].maps.shape[-1])
                LOG.info("seed %d, %s: training on all %d videos of %d subjects", seed, kind, len(training),
                         videos["fold"].nunique())  # fmt: skip
                save_state_dict(learned.train(training, options, seed, map_size, device), spotter_file(tmp, kind))
            info = {"method": "learned", "seed": seed, "map_size": map_size, "params": options.as_dict(),
                    "videos": list(videos["video"]), "subjects": sorted(set(videos["subject"]))}  # fmt: skip
            write_json(Path(tmp) / SPOTTER_INFO, info)
    return len(options.seeds)


def curves_path(folder: PathLike, seed: int, fold: str) -> Path:
    """Where the learned spotter's curves of one fold and seed go in a folds folder."""
    return Path(folder) / f"seed-{seed}" / fold / "curves.npz"


def score_all(
    videos_csv: PathLike, features: Sequence[PathLike], folder: PathLike, params: SpotParams, fold: str, seed: str
) -> int:
    """The learned spotter's curves of several folds and seeds (``all``: every one) into ``folder``."""
    folds = sorted(set(read_videos(videos_csv)["fold"])) if fold == "all" else [fold]
    seeds = list(params.learned.seeds) if seed == "all" else [int(seed)]
    unknown = sorted(set(seeds) - set(params.learned.seeds))
    if unknown:
        raise MerecError(f"--seed {unknown[0]} is not one of spot.learned.seeds {list(params.learned.seeds)}")
    inputs = _learned_inputs(videos_csv, features)  # read once for every fold and seed
    for one_seed in seeds:
        for one_fold in folds:
            score_learned(videos_csv, features, folder, params, one_fold, one_seed, inputs)
    return len(folds) * len(seeds)


# --------------------------------------------------------------------------------------- evaluation


def spot_videos(curves: Curves, videos: pd.DataFrame, p: float) -> pd.DataFrame:
    """Spotted intervals of every video and type (frame numbers of the video)."""
    first = dict(zip(videos["video"], videos["first"], strict=True))
    subject = dict(zip(videos["video"], videos["subject"], strict=True))
    rows = []
    for (video, kind), (values, k) in sorted(curves.items()):
        for item in spot(values, k, p, int(first[video])):
            rows.append((video, subject[video], kind, item.onset, item.offset, item.peak, item.score))
    return pd.DataFrame(rows, columns=["video", "subject", "type", "onset", "offset", "peak", "score"])


def random_control(
    predictions: pd.DataFrame, truth: pd.DataFrame, videos: pd.DataFrame, draws: int, seed: int
) -> dict[str, Any]:
    """F1 of the predictions moved to random places (module docstring): mean and 95% range per type."""
    rng = np.random.default_rng(seed)
    bounds = {row.video: (int(row.first), int(row.last)) for row in videos.itertuples(index=False)}
    lengths = (predictions["offset"] - predictions["onset"]).to_numpy()
    low = np.array([bounds[v][0] for v in predictions["video"]])
    high = np.array([bounds[v][1] for v in predictions["video"]]) - lengths
    f1: dict[str, list[float]] = {kind: [] for kind in (*TYPES, "overall")}
    for _ in range(draws):
        moved = predictions.copy()
        moved["onset"] = rng.integers(low, np.maximum(high, low) + 1) if len(moved) else moved["onset"]
        moved["offset"] = moved["onset"] + lengths
        for kind, values in spotting_scores(truth, moved).items():
            f1[kind].append(values["f1"])
    return {
        kind: {"f1_mean": float(np.mean(v)), "f1_ci95": [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]}
        for kind, v in f1.items()
    } | {"draws": draws, "seed": seed}


def _summary(per_seed: dict[int, dict[str, dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in (*TYPES, "overall"):
        f1 = np.array([scores[kind]["f1"] for scores in per_seed.values()])
        out[kind] = {
            "f1": float(f1.mean()),
            "f1_sd": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
            **{name: float(np.mean([s[kind][name] for s in per_seed.values()])) for name in ("precision", "recall")},
            **{name: int(sum(s[kind][name] for s in per_seed.values())) for name in ("tp", "fp", "fn")},
        }
    return out


def evaluate(
    videos_csv: PathLike,
    curves_paths: Sequence[PathLike],
    metrics_path: PathLike,
    params: SpotParams,
    dataset: str = "",
) -> dict[str, Any]:
    """Intervals, metrics, control and plots of a spotting run (module docstring)."""
    videos = read_videos(videos_csv)
    truth = read_intervals(videos_csv)
    by_seed = read_curves(curves_paths)
    for seed, curves in by_seed.items():
        missing = sorted(set(videos["video"]) - {video for video, _ in curves})
        if missing:
            raise MerecError(f"seed {seed}: no curves for video(s) {', '.join(missing[:5])}; run every fold's job")
    tables, per_seed = [], {}
    for seed, curves in sorted(by_seed.items()):
        predictions = spot_videos(curves, videos, params.threshold)
        per_seed[seed] = spotting_scores(truth, predictions)
        tables.append(_with_matches(predictions, truth).assign(seed=seed))
    intervals = pd.concat(tables, ignore_index=True)
    first_seed = min(by_seed)
    first = intervals[intervals["seed"] == first_seed].drop(columns="seed")
    control = random_control(first, truth, videos, params.control_draws, params.seed)
    summary = _summary(per_seed)
    metrics = {
        "dataset": dataset,
        "method": params.method,
        "p": params.threshold,
        "seeds": sorted(by_seed),
        "videos": len(videos),
        "intervals": {kind: int((truth["type"] == kind).sum()) for kind in TYPES},
        **summary,
        "per_seed": {str(seed): scores for seed, scores in per_seed.items()},
        "control": control,
        "beats_control": {k: summary[k]["f1"] > control[k]["f1_ci95"][1] for k in (*TYPES, "overall")},
    }
    out = Path(metrics_path)
    write_csv(out.with_name("intervals.csv"), intervals)
    write_csv(out.with_name("curves.csv"), curves_table(by_seed[first_seed], videos, truth, params.threshold))
    plot_curves(out.with_name("curves.png"), by_seed[first_seed], videos, truth, first, params.threshold, dataset)
    write_json(out, metrics)
    f1 = [summary[kind]["f1"] for kind in (*TYPES, "overall")]
    LOG.info("%s spotting (%s, p=%g, %d seed(s)): F1 micro %.3f, macro %.3f, overall %.3f; random-interval control "
             "overall %.3f (95%% up to %.3f)", dataset, params.method, params.threshold, len(by_seed), *f1,
             control["overall"]["f1_mean"], control["overall"]["f1_ci95"][1])  # fmt: skip
    return metrics


def read_spotted(path: PathLike) -> pd.DataFrame:
    """The spotted intervals :func:`evaluate` wrote (``intervals.csv``: one row per interval and seed)."""
    file = Path(path)
    if not file.is_file():
        raise MerecError(f"{file} is missing; run the spotting evaluate stage (spot-evaluate)")
    table = pd.read_csv(file, dtype={"video": str, "subject": str, "type": str})
    missing = sorted({"video", "subject", "type", "onset", "offset", "peak", "seed"} - set(table.columns))
    if missing:
        raise MerecError(f"{file}: not a spotted-intervals table (no {', '.join(missing)}); rerun spot-evaluate")
    return table


def _with_matches(predictions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The predictions with the annotation row each one matched (Excel row, onset, offset) and the IoU."""
    matches = match_intervals(truth, predictions)
    out = predictions.copy()
    out["truth_row"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["truth_onset"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["truth_offset"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["iou"] = np.nan
    for match in matches.itertuples(index=False):
        gt = truth.loc[match.truth]
        out.loc[match.prediction, ["truth_row", "truth_onset", "truth_offset", "iou"]] = (
            int(gt["row"]), int(gt["onset"]), int(gt["offset"]), float(match.iou))  # fmt: skip
    return out


def curves_table(curves: Curves, videos: pd.DataFrame, truth: pd.DataFrame, p: float) -> pd.DataFrame:
    """Per video, type and frame: the score, the video's threshold and whether the frame is annotated."""
    first = dict(zip(videos["video"], videos["first"], strict=True))
    parts = []
    for (video, kind), (values, _) in sorted(curves.items()):
        frames = np.arange(len(values)) + int(first[video])
        inside = np.zeros(len(values), bool)
        for row in truth[(truth["video"] == video) & (truth["type"] == kind)].itertuples(index=False):
            inside |= (frames >= row.onset) & (frames <= row.offset)
        level = round(threshold(values, p), 5)
        parts.append(pd.DataFrame({"video": video, "type": kind, "frame": frames, "score": np.round(values, 5),
                                   "threshold": level, "annotated": inside.astype(int)}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def plot_curves(
    path: Path, curves: Curves, videos: pd.DataFrame, truth: pd.DataFrame, spotted: pd.DataFrame, p: float, title: str
) -> None:
    """Each video's curves (micro above, macro below), the annotated intervals shaded, the spotted ones marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(videos["video"])
    figure, axes = plt.subplots(len(names) * 2, 1, figsize=(11, 1.3 * 2 * len(names)), squeeze=False)
    first = dict(zip(videos["video"], videos["first"], strict=True))
    fps = dict(zip(videos["video"], videos["fps"], strict=True))
    for row, (video, kind) in enumerate((v, k) for v in names for k in TYPES):
        axis = axes[row, 0]
        values, _ = curves[(video, kind)]
        seconds = (np.arange(len(values)) + int(first[video])) / float(fps[video])
        axis.plot(seconds, values, lw=0.7, color="tab:blue" if kind == "micro" else "tab:purple")
        axis.axhline(threshold(values, p), color="tab:red", lw=0.6, ls="--")
        for gt in truth[(truth["video"] == video) & (truth["type"] == kind)].itertuples(index=False):
            axis.axvspan(gt.onset / fps[video], gt.offset / fps[video], color="tab:green", alpha=0.25, lw=0)
        for item in spotted[(spotted["video"] == video) & (spotted["type"] == kind)].itertuples(index=False):
            axis.axvspan(item.onset / fps[video], item.offset / fps[video], ymin=0.9, ymax=1.0, color="tab:orange")
        axis.set_ylabel(f"{video}\n{kind}", fontsize=7)
        axis.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("time (s)")
    figure.suptitle(f"{title} spotting curves: annotated (green), spotted (orange), threshold (red)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
