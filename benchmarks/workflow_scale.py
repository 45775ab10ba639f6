"""Workflow overhead and parallel speed-up on a SAMM-sized dataset (159 clips, 28 subjects), and planning at scale.

Generates a synthetic dataset in SAMM's on-disk format at ``data/raw/samm`` of a working copy of
the project (168 clips from the synth generator at a small frame size, one clip dropped from each
of the last 9 subjects: 159 clips, 28 subjects, 28 LOSO folds), registers it as dataset ``samm``
and measures, for ``--cores 1`` and ``--cores 2`` in two copies sharing that dataset:

- ``snakemake -n results/samm/loso.csv`` before the run (every job planned; target at most 3 s)
  and after it (nothing to do);
- wall time of ``snakemake --cores N results/samm/loso.csv`` (target: cores 2 at least 1.7x faster
  than cores 1 on a 2-core machine);
- ``dvc status`` after the run, which recorded its stages in dvc.lock (target at most 2 s).

Pipeline settings are the defaults except for a lighter load per clip (``--face-size`` crops,
``--frames`` interpolated frames, ``--epochs``), so the figures show the workflow's overhead and
scaling rather than one model's cost.

    python benchmarks/workflow_scale.py                     # about 10 minutes on 2 cores
    python benchmarks/workflow_scale.py --plan-only --subjects 100 --clips 1100   # CAS(ME)^3-sized: planning only
    python benchmarks/workflow_scale.py --workdir /tmp/scale --keep
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow/scripts"))
from ablation import make_copy, set_param  # noqa: E402
from workspace import environment  # noqa: E402

from merec.synth.clips import ANNOTATION_FILE, SynthParams, generate, write_workbook  # noqa: E402

TARGET = "results/samm/loso.csv"
SUBJECTS = 28
CLIPS = 159


def scale_dataset(root: Path, frame_size: int, subjects: int = SUBJECTS, wanted: int = CLIPS) -> int:
    """``wanted`` clips of ``subjects`` in SAMM's on-disk format at ``root``; returns the clip count.

    The generator makes the same number of clips of each class for every subject (enough for
    ``wanted``); one clip at a time is dropped from each subject, last subjects first, until
    ``wanted`` remain.
    """
    if wanted < subjects:
        raise SystemExit(f"--clips must be at least one per subject ({subjects})")
    per_class = math.ceil(wanted / (3 * subjects))
    params = SynthParams.from_mapping(
        {"subjects": subjects, "samples_per_class": per_class, "frame_size": frame_size, "clip_frames": 32}
    )
    clips = generate(root, params)
    by_subject = {
        s: sorted((c for c in clips if c.subject == s), key=lambda c: c.filename) for s in range(1, subjects + 1)
    }
    dropped = []
    order = itertools.cycle(range(subjects, 0, -1))
    while len(clips) - len(dropped) > wanted:
        dropped.append(by_subject[next(order)].pop())
    for clip in dropped:
        shutil.rmtree(root / f"{clip.subject:03d}" / clip.filename)
    kept = [clip for clip in clips if clip not in dropped]
    write_workbook(root / ANNOTATION_FILE, kept, params)
    (root / "synth.json").unlink()  # a real SAMM copy has only frames and the workbook
    return len(kept)


def scale_params(args: argparse.Namespace) -> dict[str, Any]:
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    params["datasets"] = {"samm": {"format": "samm", "root": "data/raw/samm"}}
    set_param(params, "face.size", args.face_size)
    set_param(params, "interpolate.frames", args.frames)
    set_param(params, "train.epochs", args.epochs)
    return params


def timed(workdir: Path, *command: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, env=environment(workdir), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {workdir}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout + result.stderr


def snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    return timed(workdir, sys.executable, "-m", "snakemake", *args)


def dvc(workdir: Path, *args: str) -> tuple[float, str]:
    return timed(workdir, sys.executable, "-m", "dvc", *args)


def measure(workdir: Path, cores: int) -> dict[str, float]:
    """Ingest (so that every fold is known), dry run, full run, dry run, dvc status."""
    timed(workdir, "git", "init", "-q")
    snakemake(workdir, "--cores", str(cores), "data/interim/samm/samples.csv")
    planned, output = snakemake(workdir, "-n", TARGET)
    jobs = int(output.split("Job stats:")[-1].split("total")[1].split()[0]) if "Job stats:" in output else 0
    print(f"cores {cores}: dry run {planned:.2f} s ({jobs} jobs planned)", file=sys.stderr, flush=True)
    wall, _ = snakemake(workdir, "--cores", str(cores), TARGET)
    print(f"cores {cores}: run {wall:.0f} s", file=sys.stderr, flush=True)
    nothing, output = snakemake(workdir, "-n", TARGET)
    assert "Nothing to be done" in output, output[-2000:]
    status, output = dvc(workdir, "status", "evaluate@samm", "--with-deps")
    assert "up to date" in output, output
    status_all, _ = dvc(workdir, "status")
    return {"jobs": jobs, "dry_run_s": planned, "dry_run_done_s": nothing, "run_s": wall, "dvc_status_s": status,
            "dvc_status_all_s": status_all}  # fmt: skip


def plan(workdir: Path) -> dict[str, float]:
    """Ingest, then what a run would cost to plan: dry run and ``dvc status`` (first and repeated)."""
    timed(workdir, "git", "init", "-q")
    ingest, _ = snakemake(workdir, "--cores", "2", "data/interim/samm/samples.csv")
    planned, output = snakemake(workdir, "-n", TARGET)
    jobs = int(output.split("Job stats:")[-1].split("total")[1].split()[0]) if "Job stats:" in output else 0
    first, _ = dvc(workdir, "status", "evaluate@samm", "--with-deps")
    again, _ = dvc(workdir, "status", "evaluate@samm", "--with-deps")
    return {"ingest_s": ingest, "jobs": jobs, "dry_run_s": planned, "dvc_status_first_s": first, "dvc_status_s": again}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed afterwards")
    parser.add_argument("--keep", action="store_true", help="keep the working copies")
    parser.add_argument("--frame-size", type=int, default=160, help="synthetic frame size (px)")
    parser.add_argument("--face-size", type=int, default=64, help="face.size: aligned crop (px)")
    parser.add_argument("--frames", type=int, default=9, help="interpolate.frames")
    parser.add_argument("--epochs", type=int, default=5, help="train.epochs")
    parser.add_argument("--subjects", type=int, default=SUBJECTS, help="subjects (SAMM: 28)")
    parser.add_argument("--clips", type=int, default=CLIPS, help="clips (SAMM: 159)")
    parser.add_argument(
        "--plan-only", action="store_true", help="ingest and plan only (dry run, dvc status): for large --clips"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="merec-scale-"))
    params = scale_params(args)
    if args.plan_only:
        return plan_only(workdir, params, args)
    try:
        copies = {cores: workdir / f"cores-{cores}" for cores in (1, 2)}
        for path in copies.values():
            make_copy(ROOT, path, params, None)
        started = time.perf_counter()
        clips = scale_dataset(copies[1] / "data/raw/samm", args.frame_size, args.subjects, args.clips)
        shutil.copytree(copies[1] / "data/raw/samm", copies[2] / "data/raw/samm")
        elapsed = time.perf_counter() - started
        print(f"dataset: {clips} clips, {args.subjects} subjects ({elapsed:.0f} s)", file=sys.stderr)
        results = {cores: measure(path, cores) for cores, path in copies.items()}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    one, two = results[1], results[2]
    print(f"| measure ({clips} clips, {args.subjects} subjects) | --cores 1 | --cores 2 | target |")
    print("|---|---:|---:|---|")
    print(f"| `snakemake -n` before the run ({one['jobs']:.0f} jobs) | {one['dry_run_s']:.2f} s | "
          f"{two['dry_run_s']:.2f} s | ≤ 3 s |")  # fmt: skip
    print(f"| `snakemake -n` after the run | {one['dry_run_done_s']:.2f} s | {two['dry_run_done_s']:.2f} s | ≤ 3 s |")
    print(f"| `dvc status` of the samm stages | {one['dvc_status_s']:.2f} s | {two['dvc_status_s']:.2f} s | ≤ 2 s |")
    print(
        f"| `dvc status` (all pipelines) | {one['dvc_status_all_s']:.2f} s | {two['dvc_status_all_s']:.2f} s | ≤ 2 s |"
    )
    print(f"| full run, wall | {one['run_s']:.0f} s | {two['run_s']:.0f} s | |")
    print(f"| speed-up, cores 2 over cores 1 | | **{one['run_s'] / two['run_s']:.2f}x** | ≥ 1.7x |")
    return 0


def plan_only(workdir: Path, params: dict[str, Any], args: argparse.Namespace) -> int:
    """The planning figures (no pipeline run) for a dataset of ``--clips`` clips of ``--subjects``."""
    try:
        make_copy(ROOT, workdir / "plan", params, None)
        started = time.perf_counter()
        clips = scale_dataset(workdir / "plan/data/raw/samm", args.frame_size, args.subjects, args.clips)
        made = time.perf_counter() - started
        print(f"dataset: {clips} clips, {args.subjects} subjects ({made:.0f} s)", file=sys.stderr)
        figures = plan(workdir / "plan")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"| measure ({clips} clips, {args.subjects} subjects, {args.subjects} folds) | value | target |")
    print("|---|---:|---|")
    print(f"| ingest (reads the workbook, hashes every frame), --cores 2 | {figures['ingest_s']:.1f} s | |")
    print(f"| `snakemake -n` ({figures['jobs']:.0f} jobs planned) | {figures['dry_run_s']:.2f} s | ≤ 3 s |")
    print(f"| `dvc status` of the samm stages, first call | {figures['dvc_status_first_s']:.2f} s | |")
    print(f"| `dvc status` of the samm stages, again | {figures['dvc_status_s']:.2f} s | ≤ 2 s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
