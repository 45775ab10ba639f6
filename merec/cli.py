"""The ``merec`` command: one subcommand per pipeline stage.

Every stage reads its own section of the params file (``--params``, default ``params.yaml``), takes
explicit input and output paths, logs to stderr and to ``--log`` when given, and exits with status
2 and a one-paragraph message (no traceback) on bad input or parameters.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from merec.config import DEFAULT_PARAMS, dataset_spec, load_params, section
from merec.errors import MerecError
from merec.runtime import peak_memory_mib, setup_logging

LOG = logging.getLogger("merec")
Handler = Callable[[argparse.Namespace, dict[str, Any]], object]


def _synth(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.synth import SynthParams, generate

    return generate(args.output, SynthParams.from_params(params))


def _ingest(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.datasets.ingest import IngestParams, run

    return run(args.dataset, dataset_spec(params, args.dataset), args.output, IngestParams.from_params(params))


def _face(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.face import FaceParams, run

    return run(args.input, args.output, FaceParams.from_params(params))


def _interpolate(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.interpolate import InterpolateParams, run

    return run(args.input, args.output, InterpolateParams.from_params(params))


def _magnify(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.magnify import MagnifyParams, run

    return run(args.input, args.output, MagnifyParams.from_params(params))


def _features(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.features import FeatureParams, run

    return run(args.input, args.output, FeatureParams.from_params(params))


def _au_graph(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.au_graph import AuGraphParams, run

    return run(args.samples, args.output, AuGraphParams.from_params(params))


def _train(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.runs import run_dir
    from merec.train import TrainParams, run

    p = TrainParams.from_params(params)
    single = args.fold != "all" and args.seed != "all"
    folds = Path(args.output).parent.parent if single else Path(args.output)
    if single and args.seed.isdigit() and Path(args.output) != run_dir(folds, int(args.seed), args.fold):
        raise MerecError(f"--output {args.output}: name the run's folder <folds>/seed-{args.seed}/{args.fold}")
    return run(args.samples, args.features, args.au_graph, folds, p, fold=args.fold, seed=args.seed)


def _magnet_train(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.magnify.training.loop import MagnetTrainParams, train_magnet

    return train_magnet(args.output, MagnetTrainParams.from_params(params))


def _evaluate(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.evaluate import EvaluateParams, run

    seeds = args.seeds if args.seeds is not None else section(params, "train")["seeds"]
    output = Path(args.metrics).parent
    return run(args.samples, args.folds, output, EvaluateParams.from_params(params), args.dataset, seeds)


def _strips(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.strips import StripParams, run

    return run(args.samples, args.input, args.magnified, args.output, StripParams.from_params(params))


def _synth_lv(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.synth.long_videos import LongVideoParams, generate_long_videos

    return generate_long_videos(args.output, LongVideoParams.from_params(params))


def _ingest_lv(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.datasets.long_ingest import run
    from merec.datasets.settings import IngestParams

    spec = dataset_spec(params, args.dataset, long_videos=True)
    return run(args.dataset, spec, args.output, IngestParams.from_params(params))


def _spot_features(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.spotting.features import SpotFeatureParams, run

    return run(args.input, args.videos, args.output, SpotFeatureParams.from_params(params))


def _spot_score(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.spotting.settings import SpotParams
    from merec.spotting.stage import score_all, score_baseline

    p = SpotParams.from_params(params)
    if p.method == "baseline":
        if args.fold is not None or args.seed is not None:
            raise MerecError("spot.method is baseline: it trains nothing, so --fold and --seed do not apply")
        return score_baseline(args.videos, args.features, args.output, p)
    return score_all(args.videos, args.features, args.output, p, args.fold or "all", args.seed or "all")


def _spot_train(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.spotting.settings import SpotParams
    from merec.spotting.stage import train_spotter

    return train_spotter(args.videos, args.features, args.output, SpotParams.from_params(params))


def _spot_evaluate(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.spotting.settings import SpotParams
    from merec.spotting.stage import evaluate

    return evaluate(args.videos, args.curves, args.metrics, SpotParams.from_params(params), args.dataset)


def _spot_clips(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.datasets.settings import IngestParams
    from merec.spotting.recognition import write_clips

    spec = dataset_spec(params, args.dataset, long_videos=True)
    return write_clips(args.dataset, spec["format"], args.videos, args.spotted, args.output,
                       IngestParams.from_params(params))  # fmt: skip


def _spot_strs(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.runs import folds_root
    from merec.spotting.recognition import strs_report

    seeds = section(params, "train")["seeds"]
    return strs_report(args.videos, args.spotted, args.samples, folds_root(args.folds), args.output, seeds,
                       args.dataset)  # fmt: skip


def _export(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.bundle import export

    path = export(args.run, args.output, params, args.spotter)
    LOG.info("bundle written to %s (load it with merec.bundle.load_bundle)", path)
    return path


def _predict(args: argparse.Namespace, params: dict[str, Any]) -> object:
    from merec.predict import PredictOptions, predict

    options = PredictOptions(args.fps, args.onset, args.apex, args.offset, args.annotation and Path(args.annotation),
                             args.video, args.detect_max_side)  # fmt: skip
    summary = predict(args.input, args.model, args.output, options, params)  # --params given: must agree
    LOG.info("open %s in a browser", Path(args.output) / "report.html")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="merec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"merec {__import__('merec').__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="STAGE")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--params", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
        sub.add_argument("--log", help="also write the log to this file")
        sub.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        sub.set_defaults(handler=handler)
        return sub

    sub = command("synth", _synth, "generate the embedded synthetic dataset (SAMM format)")
    sub.add_argument("--output", required=True, help="dataset root to write, e.g. data/raw/synth")
    sub = command("ingest", _ingest, "read a dataset's annotations into samples.csv and per-shard clip lists")
    sub.add_argument("--dataset", required=True, help="a name listed under 'datasets' or 'catalogue' in params.yaml")
    sub.add_argument(
        "--output",
        required=True,
        help="samples table to write (classes.json, skipped.csv and the clips/ folder go beside it)",
    )
    for name, handler, text, source in (
        ("face", _face, "detect, align and crop the face of every clip of a shard", "ingest's clip list"),
        ("interpolate", _interpolate, "resample each clip from onset to apex to N frames", "face"),
        ("magnify", _magnify, "magnify each clip's motion relative to its onset", "interpolate"),
        ("features", _features, "optical flow, strain and ROI tensors per clip", "magnify"),
    ):
        sub = command(name, handler, text)
        sub.add_argument("--input", required=True, help=f"the shard's {source} manifest (<stage>/shard-<k>.json)")
        sub.add_argument(
            "--output", required=True, help="the shard manifest to write; the clips go to the folder beside it"
        )
    sub = command("au-graph", _au_graph, "per-fold AU co-occurrence graphs from the training subjects")
    sub.add_argument("--samples", required=True)
    sub.add_argument("--output", required=True)
    sub = command("train", _train, "train and predict one LOSO fold (or all) with one seed (or all)")
    sub.add_argument("--samples", required=True)
    sub.add_argument("--features", required=True, nargs="+", help="the features stage's shard manifests or folder")
    sub.add_argument("--au-graph", help="directory of per-fold AU graphs")
    sub.add_argument(
        "--output",
        required=True,
        help="the run's folder for one fold and one seed; with --fold all or --seed all, the folds folder "
        "that holds seed-<S>/<fold>/",
    )
    sub.add_argument("--fold", required=True, help="a fold of samples.csv, all (every fold), all-subjects (none out)")
    sub.add_argument("--seed", default="all", help="one of train.seeds, or 'all' (default)")
    sub = command("magnet-train", _magnet_train, "train MagNet on synthetic magnification pairs")
    sub.add_argument(
        "--output", required=True, help="checkpoint to write, e.g. merec/weights/magnet.pt (+ _curve.csv, _train.json)"
    )
    sub = command("evaluate", _evaluate, "pooled LOSO metrics, confusion matrix and plot data")
    sub.add_argument("--samples", required=True)
    sub.add_argument(
        "--folds",
        required=True,
        nargs="+",
        help="the train stage's run folders, or its folds folder (seed-<S>/<fold>/)",
    )
    sub.add_argument("--metrics", required=True, help="metrics.json to write; the other results go beside it")
    sub.add_argument("--dataset", default="", help="dataset name for titles")
    sub.add_argument("--seeds", type=int, nargs="+", help="seeds to evaluate (default: train.seeds of the params file)")
    sub = command("strips", _strips, "interpolated vs magnified frame strips of a few samples, for the report")
    sub.add_argument("--samples", required=True, help="samples table (labels; classes.json beside it)")
    sub.add_argument("--input", required=True, nargs="+", help="the interpolate stage's folder or shard manifests")
    sub.add_argument("--magnified", required=True, nargs="+", help="the magnify stage's folder or shard manifests")
    sub.add_argument("--output", required=True, help="folder to write: <sample>.png per strip and strips.csv")
    sub = command("synth-lv", _synth_lv, "generate the embedded long-video dataset (SAMM Long Videos format)")
    sub.add_argument("--output", required=True, help="dataset root to write, e.g. data/raw/synth_lv")
    sub = command("ingest-lv", _ingest_lv, "read a long-video dataset into videos.csv and intervals.csv")
    sub.add_argument("--dataset", required=True, help="a name under 'long_videos' or 'long_video_catalogue'")
    sub.add_argument("--output", required=True, help="videos.csv to write (intervals.csv etc. go beside it)")
    sub = command("spot-features", _spot_features, "per-frame motion features of one shard's long videos")
    sub.add_argument("--input", required=True, help="the shard's video list from ingest-lv (videos/shard-<k>.json)")
    sub.add_argument("--videos", required=True, help="ingest-lv's videos.csv (the frame rates)")
    sub.add_argument(
        "--output", required=True, help="the shard manifest to write; the videos' features go to the folder beside it"
    )
    sub = command("spot-score", _spot_score, "spotting curves: the baseline's, or the learned spotter's per fold")
    sub.add_argument("--videos", required=True)
    sub.add_argument("--features", required=True, nargs="+", help="spot-features' shard manifests or folder")
    sub.add_argument(
        "--output",
        required=True,
        help="the method's curves folder, results/<ds>/spotting/scores/<method>: the baseline writes curves.npz "
        "there, the learned spotter seed-<S>/<fold>/curves.npz",
    )
    sub.add_argument("--fold", help="learned spotter: the held-out subject (default: every fold)")
    sub.add_argument("--seed", help="learned spotter: one of spot.learned.seeds (default: every seed)")
    sub = command("spot-train", _spot_train, "the learned spotter trained on every video of a dataset, for a bundle")
    sub.add_argument("--videos", required=True)
    sub.add_argument("--features", required=True, nargs="+", help="spot-features' shard manifests or folder")
    sub.add_argument("--output", required=True, help="results/<lv>/spotting/spotter: seed-<S>/spotter-<type>.pt")
    sub = command("spot-evaluate", _spot_evaluate, "spotted intervals, MEGC spotting metrics, control and plots")
    sub.add_argument("--videos", required=True)
    sub.add_argument("--curves", required=True, nargs="+", help="curves.npz files, or a folder of them")
    sub.add_argument("--metrics", required=True, help="spot_metrics.json to write; the other results go beside it")
    sub.add_argument("--dataset", default="", help="dataset name for titles")
    sub = command("export", _export, "a bundle of the recogniser trained on every subject, with its params")
    sub.add_argument("--run", required=True, help="results/<ds>, the dataset's results (train_all's model/ in it)")
    sub.add_argument("--output", required=True, help="the bundle folder to write, e.g. model.merec")
    sub.add_argument("--spotter", help="spot.method learned: the spot_train output to bundle (default for "
                     "results/<lv>-spotted: results/<lv>/spotting/spotter)")  # fmt: skip
    sub = command("predict", _predict, "spot and recognise micro-expressions in a video with an exported bundle")
    sub.set_defaults(params=None)  # a bundle runs with its own params; --params only checks they agree
    sub.add_argument("input", help="a video file (mp4, avi, mov, ...) or a folder of frames")
    sub.add_argument("--model", required=True, help="the bundle folder `merec export` wrote")
    sub.add_argument("--output", required=True, help="folder to write: predictions.csv, summary.json, report.html")
    sub.add_argument("--fps", type=float, help="frame rate (default: the video's; needed for a folder of frames)")
    sub.add_argument("--onset", type=int, help="a known interval's first frame: skip spotting, recognise it")
    sub.add_argument("--apex", type=int, help="its apex frame (default: estimated from the flow)")
    sub.add_argument("--offset", type=int, help="its last frame")
    sub.add_argument("--annotation", help="score against a long-video release's root folder, or an intervals CSV "
                     "(onset, offset[, video, type, emotion])")  # fmt: skip
    sub.add_argument("--video", help="the annotation's video id (default: the input's name)")
    sub.add_argument("--detect-max-side", type=int, default=640,
                     help="px; larger frames are downscaled for face detection only (default: 640)")  # fmt: skip
    sub = command("spot-clips", _spot_clips, "the spotted micro-expressions and the annotated ones as a clip dataset")
    sub.add_argument("--dataset", required=True, help="the long-video dataset (under 'long_videos' or its catalogue)")
    sub.add_argument("--videos", required=True, help="ingest-lv's videos.csv (intervals.csv beside it)")
    sub.add_argument("--spotted", required=True, help="spot-evaluate's intervals.csv")
    sub.add_argument("--output", required=True, help="samples.csv to write: data/interim/<ds>-spotted/samples.csv")
    sub = command("spot-strs", _spot_strs, "STRS: spotting F1 x analysis F1 of the recognised spotted intervals")
    sub.add_argument("--videos", required=True, help="ingest-lv's videos.csv (intervals.csv beside it)")
    sub.add_argument("--spotted", required=True, help="spot-evaluate's intervals.csv")
    sub.add_argument("--samples", required=True, help="spot-clips' samples.csv")
    sub.add_argument("--folds", required=True, nargs="+", help="the clips dataset's training runs (folder or runs)")
    sub.add_argument("--output", required=True, help="strs.json to write")
    sub.add_argument("--dataset", default="", help="dataset name for titles")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``merec`` console command."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log, args.verbose)
    started = time.perf_counter()
    try:
        params = load_params(args.params) if args.params else {}
        args.handler(args, params)
    except MerecError as exc:
        LOG.error("%s", exc)
        print(f"merec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        LOG.error("interrupted; no partial output was kept")
        return 130
    own, worker = peak_memory_mib()
    LOG.info(
        "%s done in %.1f s; peak memory %.0f MiB (this process), %.0f MiB (largest worker process)",
        args.command, time.perf_counter() - started, own, worker,
    )  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
