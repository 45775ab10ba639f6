"""Where the default job's time goes: each stage's wall time against what its kernel alone costs.

Runs the default job (`snakemake --cores N`, rule all, params.yaml as it is) in a fresh working copy
of the project and reads every job's start and end from Snakemake's log. Then, on that run's own
data and in this process, times each stage's kernel alone on one thread: one synthetic clip, one
face alignment, one IFNet pass, one MagNet frame, one TV-L1 pair (with strain), one training
epoch. A stage's kernel-bound estimate is kernel time x how often the job needs it / cores; what
the stage's wall time adds to that is overhead (process start-up, imports, model loading, file
I/O, scheduling). A stage's share of the run is its jobs' seconds divided by the cores (shard jobs
of different stages overlap in time, so a stage's first-to-last span says little).

    python benchmarks/stage_costs.py                                # about 6 minutes on 2 cores
    python benchmarks/stage_costs.py --output benchmarks/results/stage_costs.json

The JSON it writes is what the README quotes (a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow/scripts"))
from _record import cpu_description  # noqa: E402
from workspace import copy_project, environment  # noqa: E402

WHOLE_MACHINE = ("synth", "ingest")  # jobs that take every core (the others one thread each on 2 cores)
STAGES = ("synth", "ingest", "face", "interpolate", "magnify", "features", "au_graph", "train", "evaluate", "strips")


def working_copy(target: Path) -> Path:
    """The project as a commit holds it, in a new git repository (no built outputs)."""
    copy_project(ROOT, target)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def job_spans(log: str) -> list[dict[str, Any]]:
    """(rule, start, end) of every job of a Snakemake log (timestamps to the second)."""
    started: dict[str, tuple[str, datetime]] = {}
    spans = []
    now = None
    lines = log.splitlines()
    for index, line in enumerate(lines):
        stamp = re.match(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line)
        if stamp:
            now = datetime.strptime(stamp.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        head = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", line)
        if head and now is not None:
            jobid = next(
                (m.group(1) for m in map(re.compile(r"jobid: (\d+)").search, lines[index : index + 9]) if m), None
            )
            if jobid is not None:
                started[jobid] = (head.group(1), now)
        done = re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)
        if done and now is not None and done.group(1) in started:
            rule, begin = started.pop(done.group(1))
            spans.append({"rule": rule, "start": begin, "end": now})
    return spans


def per_stage(spans: list[dict[str, Any]], origin: datetime) -> dict[str, dict[str, float]]:
    out = {}
    for stage in STAGES:
        mine = [s for s in spans if s["rule"] == stage]
        if not mine:
            continue
        out[stage] = {
            "jobs": len(mine),
            "job_seconds": sum((s["end"] - s["start"]).total_seconds() for s in mine),
            "from_s": (min(s["start"] for s in mine) - origin).total_seconds(),
            "to_s": (max(s["end"] for s in mine) - origin).total_seconds(),
        }
    return out


def best_of(function: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of ``repeat`` timed calls (after one warm-up call)."""
    function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def kernels(root: Path, params: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each stage's kernel on one thread, on the run's own data, and how often the job needs it."""
    import cv2
    import torch

    from merec.datasets.ingest import read_classes, read_samples
    from merec.face import FaceParams, align_clip
    from merec.features import FeatureParams, make_flow, optical_strain
    from merec.interpolate import InterpolateParams, make_interpolator
    from merec.interpolate.positions import source_positions, split_positions
    from merec.io import load_npz, read_image
    from merec.magnify import MagnifyParams, make_magnifier
    from merec.shards import read_stage, stage_samples
    from merec.synth.clips import SynthParams, _render_clip, make_subjects, plan_clips
    from merec.train import TrainParams, load_features, train_fold

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    interim = root / "data/interim/synth"
    samples = read_samples(interim / "samples.csv")
    n_clips = len(samples)
    face = stage_samples(read_stage(interim / "face"))
    interpolated = stage_samples(read_stage(interim / "interpolate"))
    magnified = stage_samples(read_stage(interim / "magnify"))
    sample = samples["sample"].iloc[0]
    out: dict[str, dict[str, float]] = {}

    synth = SynthParams.from_params(params)
    clip = plan_clips(synth, np.random.default_rng(synth.seed))[0]
    subject = make_subjects(synth)[clip.subject]
    out["synth"] = {
        "seconds": best_of(lambda: _render_clip(subject, clip, synth, np.random.default_rng(0))),
        "count": n_clips,
    }

    row = samples.iloc[0]
    from merec.datasets.frames import list_frames

    listed = list_frames(root / row["frames_dir"])
    frames = [read_image(listed[n]) for n in range(int(row["onset"]), int(row["offset"]) + 1)]
    face_params = FaceParams.from_params(params)
    out["face"] = {"seconds": best_of(lambda: align_clip(frames, 1, sample, face_params)), "count": n_clips}

    interpolate = InterpolateParams.from_params(params)
    interpolator = make_interpolator(interpolate)
    crops = load_npz(face[sample])["frames"]
    pair = crops[:2]
    passes = 0
    for path in face.values():
        arrays = load_npz(path)
        apex = int(arrays["apex_index"])
        _, frac = split_positions(source_positions(apex + 1, interpolate.frames), apex + 1)
        left, _ = split_positions(source_positions(apex + 1, interpolate.frames), apex + 1)
        passes += len(np.unique(left[frac > 0]))
    out["interpolate"] = {"seconds": best_of(lambda: interpolator.resample(pair, np.array([0.5]))), "count": passes}

    magnifier = make_magnifier(MagnifyParams.from_params(params))
    clip_frames = load_npz(interpolated[sample])["frames"]
    per_clip = best_of(lambda: magnifier(clip_frames), repeat=2)
    out["magnify"] = {"seconds": per_clip / (len(clip_frames) - 1), "count": n_clips * (len(clip_frames) - 1)}

    features = FeatureParams.from_params(params)
    flow = make_flow(features.flow, features.tvl1)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in load_npz(magnified[sample])["frames"]]

    def one_pair() -> None:
        optical_strain(flow(gray[0], gray[-1]))

    out["features"] = {"seconds": best_of(one_pair), "count": n_clips * (len(gray) - 1)}

    train = TrainParams.from_params(params)
    one_epoch = TrainParams.from_mapping(train.as_dict() | {"epochs": 1, "device": "cpu"})
    loaded = load_features(samples, root / "data/processed/synth/features")
    classes = read_classes(interim / "samples.csv")
    from merec.train import load_graph

    fold = sorted(samples["fold"].unique())[0]
    adjacency, aus = load_graph(root / "data/processed/synth/au_graph", fold)
    epoch = best_of(lambda: train_fold(loaded, classes, fold, one_epoch, adjacency, aus=aus), repeat=2)
    folds = samples["fold"].nunique() * len(train.seeds)
    out["train"] = {"seconds": epoch, "count": train.epochs * folds}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="with --workdir: time the kernels of the run already there"
    )
    parser.add_argument(
        "--output", type=Path, help="write the figures as JSON (e.g. benchmarks/results/stage_costs.json)"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="merec-costs-"))
    try:
        root = workdir / "repo"
        record_file = workdir / "run.json"
        if not (args.reuse and record_file.is_file()):
            working_copy(root)
            started = time.perf_counter()
            origin = datetime.now().replace(microsecond=0)
            result = subprocess.run(
                [sys.executable, "-m", "snakemake", "--cores", str(args.cores)],
                cwd=root, env=environment(root), capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"snakemake failed:\n{result.stderr[-3000:]}")
            stages = per_stage(job_spans(result.stdout + result.stderr), origin)
            record_file.write_text(json.dumps({"wall": wall, "stages": stages}))
        run_record = json.loads(record_file.read_text())
        wall, stages = run_record["wall"], run_record["stages"]
        params = yaml.safe_load((root / "params.yaml").read_text())
        sys.path.insert(0, str(root))
        measured = kernels(root, params)
        metrics = json.loads((root / "results/synth/metrics.json").read_text())
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for stage, figures in stages.items():
        kernel = measured.get(stage)
        estimate = kernel["seconds"] * kernel["count"] / args.cores if kernel else None
        threads = args.cores if stage in WHOLE_MACHINE else 1
        share = figures["job_seconds"] * threads / args.cores  # the stage's share of the run's wall time
        rows.append({"stage": stage, **figures, "share_s": share, "kernel_s": kernel and kernel["seconds"],
                     "kernel_count": kernel and kernel["count"], "estimate_s": estimate})  # fmt: skip
    record = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "machine": f"{cpu_description()}, Linux, {args.cores} cores used",
        "command": f"snakemake --cores {args.cores}",
        "total_s": round(wall, 1),
        "uf1": metrics["uf1"],
        "stages": rows,
    }
    print(f"default job, `snakemake --cores {args.cores}`: {wall:.0f} s wall (UF1 {metrics['uf1']:.3f})")
    header = ("stage", "jobs", "job s", "job s/core", "kernel ms", "x count", "bound s", "ratio")
    print(f"{header[0]:<12} " + " ".join(f"{h:>10}" for h in header[1:]))
    for row in rows:
        bound = row["estimate_s"]
        kernel_ms = f"{row['kernel_s'] * 1e3:.1f}" if row["kernel_s"] else "-"
        ratio = f"{row['share_s'] / bound:.2f}" if bound else "-"
        cells = (row["jobs"], round(row["job_seconds"]), round(row["share_s"]), kernel_ms, row["kernel_count"] or "-",
                 "-" if bound is None else round(bound), ratio)  # fmt: skip
        print(f"{row['stage']:<12} " + " ".join(f"{c!s:>10}" for c in cells))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
