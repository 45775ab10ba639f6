"""Workflow overhead, parallel speed-up and memory at the size of real datasets, and what a cluster would take.

Two measurements, each on a synthetic dataset in SAMM's on-disk format in a working copy of the
project (``data/raw/samm``, registered as dataset ``samm``; frames from the synth generator at a
small frame size):

- **SAMM-sized** (default: 159 clips of 28 subjects, 28 LOSO folds), run twice, with ``--cores 1``
  and ``--cores 2``, each in its own copy: ``snakemake -n`` before the run (every job planned;
  target at most 3 s) and after it (nothing to do); the per-sample stages alone (face ..
  features, one job per shard and stage) and then the rest (folds, evaluate), each timed (target:
  cores 2 at least 1.8x faster than cores 1 on the preprocessing, on a 2-core machine);
  ``dvc status`` after the run, which Snakemake recorded in ``dvc.lock`` (target at most 2 s).
- **CAS(ME)^3-sized** (``--large``: 1,100 clips of 100 subjects, 100 folds): planning (dry run,
  ``dvc status``) and the per-sample stages with ``--cores 2``, then with ``--cores 1`` in a second
  copy (the speed-up); no training.
- **SAMM-LV-sized** (``--long``: 150 videos of 30 subjects, 7,000 frames each at 200 fps, about a
  million frame files; the release's workbooks from a ``synth_lv`` plan, every frame a hard link to
  one small JPEG of its video): planning of the spotting pipeline before and after ingest (``snakemake -n``,
  which fingerprints every frame file), ingest (reads the workbook, checks and hashes every frame),
  and ``dvc status``; the per-video stages are not run (a million frames at the measured spotting
  rate are hours of CPU).

Each stage job logs its time and its peak memory (``merec <stage> ... done in``); the record keeps,
per stage, the jobs' seconds and the largest peak of a job's own process and of one of its worker
processes. Pipeline settings are the defaults except for a lighter load per clip (``--face-size``
crops, ``--frames`` interpolated frames, ``--epochs``), so the figures show the workflow's overhead
and scaling rather than one model's cost; :func:`projection` scales the default settings' per-job
costs (``benchmarks/results/stage_costs.json``) to a CAS(ME)^3-sized run on a node or a cluster.

    python benchmarks/workflow_scale.py --output benchmarks/results/workflow_scale.json            # ~8 min
    python benchmarks/workflow_scale.py --large --output benchmarks/results/workflow_scale_large.json  # ~20 min
    python benchmarks/workflow_scale.py --long --output benchmarks/results/workflow_scale_long.json    # ~15 min
    python benchmarks/workflow_scale.py --workdir /tmp/scale --keep

docs/cluster.md quotes both records and the projection (a test keeps them in step).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow/scripts"))
from _record import cpu_description, write_record  # noqa: E402
from ablation import make_copy, set_param  # noqa: E402
from workspace import environment  # noqa: E402

from merec.synth.clips import ANNOTATION_FILE, SynthParams, generate, write_workbook  # noqa: E402
from merec.synth.long_videos import (  # noqa: E402
    EMOTION_ANNOTATION,
    FRAMES_FOLDER,
    LONG_VIDEO_ANNOTATION,
    LongVideoParams,
    frame_file,
    plan_videos,
    write_emotion_workbook,
    write_long_video_workbook,
)

TARGET = "results/samm/loso.csv"
SUBJECTS = 28
CLIPS = 159
LARGE = {"subjects": 100, "clips": 1100}  # CAS(ME)^3 part A: about 1,100 clips of 100 subjects
LONG = {"subjects": 30, "videos_per_subject": 5, "frames": 7000, "fps": 200.0}  # SAMM-LV: 147 videos, 32 subjects
LONG_TARGET = "results/samm_lv/spotting/spot_metrics.json"
PER_SAMPLE = ("face", "interpolate", "magnify", "features")
DONE = re.compile(r"INFO: (\S+) done in ([\d.]+) s; peak memory (\d+) MiB \(this process\), (\d+) MiB")


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


def project_copy(target: Path, params: dict[str, Any]) -> None:
    """A working copy with ``params`` that DVC also knows (so that ``dvc status`` can be measured)."""
    make_copy(ROOT, target, params, None)
    for name in ("dvc.yaml", "dvc.lock"):
        shutil.copy2(ROOT / name, target / name)
    timed(target, "git", "init", "-q")


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


def planned_jobs(output: str) -> int:
    """The job count of a ``snakemake -n`` run's "Job stats" table (0 when there is nothing to do)."""
    if "Job stats:" not in output:
        return 0
    return int(output.split("Job stats:")[-1].split("total")[1].split()[0])


def per_sample_targets(workdir: Path) -> list[str]:
    """The features manifest of every shard ingest wrote (the per-sample stages' last outputs)."""
    shards = sorted((workdir / "data/interim/samm/clips").glob("shard-*.json"))
    return [f"data/processed/samm/features/{path.name}" for path in shards]


def stage_figures(workdir: Path, dataset: str = "samm") -> dict[str, dict[str, float]]:
    """Per command, from the stage logs: jobs, their seconds, the largest peak memory of a job and of a worker."""
    figures: dict[str, dict[str, float]] = {}
    for log in sorted((workdir / "logs" / dataset).rglob("*.log")):
        for match in DONE.finditer(log.read_text()):
            stage, seconds, own, worker = match.group(1), float(match.group(2)), int(match.group(3)), int(match[4])
            row = figures.setdefault(stage, {"jobs": 0, "job_s": 0.0, "peak_mib": 0, "worker_peak_mib": 0})
            row["jobs"] += 1
            row["job_s"] = round(row["job_s"] + seconds, 1)
            row["peak_mib"] = max(row["peak_mib"], own)
            row["worker_peak_mib"] = max(row["worker_peak_mib"], worker)
    return figures


KERNEL = """
import time, numpy as np, torch, cv2
torch.set_num_threads(1); cv2.setNumThreads(1)
rng = np.random.default_rng(0)
a = cv2.GaussianBlur((rng.random((128, 128)) * 255).astype(np.uint8), (7, 7), 2)
b = np.roll(a, 1, axis=1)
flow = cv2.optflow.DualTVL1OpticalFlow_create()
x, conv = torch.randn(16, 90, 32, 32), torch.nn.Conv2d(90, 90, 3, padding=1)
started = time.perf_counter()
with torch.inference_mode():
    for _ in range(ROUNDS):
        flow.calc(a, b, None)
        conv(x)
print(time.perf_counter() - started)
"""


def parallel_efficiency(processes: int = 2, rounds: int = 12) -> dict[str, float]:
    """How much slower one single-threaded kernel (a TV-L1 pair and a 90-channel convolution, the
    per-sample stages' two main costs) runs when ``processes`` copies run at once than alone.

    ``efficiency`` 1.0: the cores are independent; below that the machine itself (shared physical
    cores, memory bandwidth) caps what any number of parallel jobs can gain: at most
    ``processes x efficiency``.
    """
    code = KERNEL.replace("ROUNDS", str(rounds))

    def run(copies: int) -> float:
        started = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
                   for _ in range(copies)]  # fmt: skip
        return max(float(process.communicate()[0]) for process in started)

    run(1)  # warm-up: imports from a cold cache
    alone, together = run(1), run(processes)
    return {"alone_s": round(alone, 3), "together_s": round(together, 3), "efficiency": round(alone / together, 3)}


def measure(workdir: Path, cores: int) -> dict[str, Any]:
    """Ingest (so that every fold is known), dry run, the per-sample stages, the rest, dry run, dvc status."""
    snakemake(workdir, "--cores", str(cores), "data/interim/samm/samples.csv")
    planned, output = snakemake(workdir, "-n", TARGET)
    jobs = planned_jobs(output)
    print(f"cores {cores}: dry run {planned:.2f} s ({jobs} jobs planned)", file=sys.stderr, flush=True)
    preprocess, _ = snakemake(workdir, "--cores", str(cores), *per_sample_targets(workdir))
    rest, _ = snakemake(workdir, "--cores", str(cores), TARGET)
    print(f"cores {cores}: per-sample stages {preprocess:.0f} s, the rest {rest:.0f} s", file=sys.stderr, flush=True)
    nothing, output = snakemake(workdir, "-n", TARGET)
    if "Nothing to be done" not in output:
        raise SystemExit(f"a second dry run still plans jobs:\n{output[-2000:]}")
    status, output = dvc(workdir, "status", "evaluate@samm", "--with-deps")
    if "up to date" not in output:
        raise SystemExit(f"DVC does not see the Snakemake run as up to date:\n{output[-2000:]}")
    status_all, _ = dvc(workdir, "status")
    return {
        "jobs": jobs, "dry_run_s": round(planned, 2), "dry_run_done_s": round(nothing, 2),
        "per_sample_s": round(preprocess, 1), "rest_s": round(rest, 1), "run_s": round(preprocess + rest, 1),
        "dvc_status_s": round(status, 2), "dvc_status_all_s": round(status_all, 2), "stages": stage_figures(workdir),
        "recording": recording_seconds(workdir),
    }  # fmt: skip


def recording_seconds(workdir: Path) -> dict[str, Any]:
    """Recording the per-sample stages in ``dvc.lock`` again: DVC's command line against Snakemake's one pass.

    Snakemake's run ends with that recording (``workflow/rules/state.py commit``, the same work as
    ``dvc commit --force`` in one reading of the project); both leave ``dvc.lock`` as it was here.
    """
    shards = sorted(int(path.stem.split("-")[1]) for path in (workdir / "data/interim/samm/clips").glob("shard-*.json"))
    stages = [f"{stage}@samm-{shard}" for stage in PER_SAMPLE for shard in shards]
    command_line, _ = dvc(workdir, "commit", "--force", *stages)
    one_pass, _ = timed(workdir, sys.executable, "workflow/rules/state.py", "commit", *stages)
    return {"stages": len(stages), "dvc_commit_s": round(command_line, 2), "one_pass_s": round(one_pass, 2)}


def measure_large(workdir: Path, cores: int) -> dict[str, Any]:
    """Ingest, planning (dry run, dvc status twice) and the per-sample stages of a large dataset."""
    ingest, _ = snakemake(workdir, "--cores", str(cores), "data/interim/samm/samples.csv")
    planned, output = snakemake(workdir, "-n", TARGET)
    first, _ = dvc(workdir, "status", "evaluate@samm", "--with-deps")
    again, _ = dvc(workdir, "status", "evaluate@samm", "--with-deps")
    print(f"ingest {ingest:.0f} s, dry run {planned:.2f} s, dvc status {again:.2f} s", file=sys.stderr, flush=True)
    preprocess, _ = snakemake(workdir, "--cores", str(cores), *per_sample_targets(workdir))
    print(f"per-sample stages {preprocess:.0f} s", file=sys.stderr, flush=True)
    return {
        "ingest_s": round(ingest, 1), "jobs": planned_jobs(output), "dry_run_s": round(planned, 2),
        "dvc_status_first_s": round(first, 2), "dvc_status_s": round(again, 2), "per_sample_s": round(preprocess, 1),
        "stages": stage_figures(workdir),
    }  # fmt: skip


def long_dataset(root: Path, template: Path, frame_size: int) -> dict[str, int]:
    """A SAMM-LV-sized release at ``root`` (see the module docstring), its JPEGs in ``template``; returns its counts."""
    section = yaml.safe_load((ROOT / "params.yaml").read_text())["synth_lv"]
    seconds = LONG["frames"] / LONG["fps"]
    section.update(subjects=LONG["subjects"], videos_per_subject=LONG["videos_per_subject"], fps=LONG["fps"],
                   duration_s=[seconds, seconds], frame_size=frame_size)  # fmt: skip
    params = LongVideoParams.from_mapping(section)
    videos = plan_videos(params)
    root.mkdir(parents=True)
    write_long_video_workbook(root / LONG_VIDEO_ANNOTATION, videos, params)
    write_emotion_workbook(root / EMOTION_ANNOTATION, videos)
    rng = np.random.default_rng(0)
    grey = cv2.GaussianBlur((rng.random((frame_size, frame_size)) * 255).astype(np.uint8), (9, 9), 3)
    template.mkdir(parents=True)
    for video in videos:  # one JPEG per video: a file takes at most 65,000 hard links (ext4)
        source = template / f"{video.name}.jpg"
        cv2.imwrite(str(source), np.roll(grey, video.index + 7 * video.subject, axis=1))
        folder = root / FRAMES_FOLDER / video.name
        folder.mkdir(parents=True)
        for number in range(1, video.frames + 1):
            os.link(source, folder / frame_file(video.name, number, video.frames))
    return {"videos": len(videos), "subjects": LONG["subjects"], "frames": sum(video.frames for video in videos),
            "intervals": sum(len(video.events) for video in videos)}  # fmt: skip


def measure_long(workdir: Path, cores: int) -> dict[str, Any]:
    """Planning before and after ingest, ingest, and ``dvc status`` of a SAMM-LV-sized long-video set."""
    before, _ = snakemake(workdir, "-n", LONG_TARGET)
    again, _ = snakemake(workdir, "-n", LONG_TARGET)
    ingest, _ = snakemake(workdir, "--cores", str(cores), "data/interim/samm_lv/videos.csv")
    planned, output = snakemake(workdir, "-n", LONG_TARGET)
    first, _ = dvc(workdir, "status", "ingest_lv@samm_lv")
    status, _ = dvc(workdir, "status", "ingest_lv@samm_lv")
    lists = sum(path.stat().st_size for path in (workdir / "data/interim/samm_lv/videos").glob("shard-*.json"))
    print(f"dry run {before:.1f} s, ingest {ingest:.0f} s, dvc status {status:.1f} s", file=sys.stderr, flush=True)
    return {
        "dry_run_first_s": round(before, 2), "dry_run_s": round(again, 2), "ingest_s": round(ingest, 1),
        "jobs": planned_jobs(output), "dry_run_after_ingest_s": round(planned, 2),
        "dvc_status_first_s": round(first, 2), "dvc_status_s": round(status, 2),
        "video_lists_mib": round(lists / 2**20, 1), "stages": stage_figures(workdir, "samm_lv"),
    }  # fmt: skip


def long_table(record: dict[str, Any]) -> str:
    """docs/cluster.md's table of a SAMM-LV-sized record (planning and ingest of the spotting pipeline)."""
    run = record["run"]
    ingest = run["stages"]["ingest-lv"]
    rows = [
        ("`snakemake -n` of the spotting target before ingest, first call (fingerprints every frame file)",
         f"{run['dry_run_first_s']:.2f} s", ""),
        ("the same, again", f"{run['dry_run_s']:.2f} s", "≤ 3 s"),
        (f"ingest (reads the workbooks, checks and hashes every frame), --cores {record['cores']}",
         f"{run['ingest_s']:.0f} s", ""),
        ("ingest's peak memory", f"{ingest['peak_mib']} MiB", ""),
        ("the video lists ingest hands to the per-video stages (every frame and its hash)",
         f"{run['video_lists_mib']:.0f} MiB", ""),
        (f"`snakemake -n` after ingest ({run['jobs']} jobs planned)", f"{run['dry_run_after_ingest_s']:.2f} s",
         "≤ 3 s"),
        ("`dvc status` of ingest, first call", f"{run['dvc_status_first_s']:.2f} s", ""),
        ("`dvc status` of ingest, again", f"{run['dvc_status_s']:.2f} s", "≤ 2 s"),
    ]  # fmt: skip
    data = record["dataset"]
    lines = [f"| measure ({data['videos']} videos of {data['subjects']} subjects, {data['frames']:,} frames) | value "
             "| target |", "|---|---:|---|"]  # fmt: skip
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def projection(costs: dict[str, Any], clips: int, subjects: int, node_cores: int, nodes: int) -> dict[str, float]:
    """Hours of a default-settings run of ``clips`` clips of ``subjects`` on ``nodes`` nodes of ``node_cores``.

    From the default job's measured jobs (``stage_costs.json``: 72 clips, 12 folds): each
    per-sample stage's job seconds per clip, times ``clips``, spread over every core (as many shards
    as cores); one fold job's seconds, scaled by its training clips (an epoch's cost grows with
    them; the job's start-up is counted once per fold), times ``subjects`` folds, spread over every
    core. It assumes the real frames cost the synthetic ones' (face detection on larger frames costs
    more) and no queueing.
    """
    stages = {row["stage"]: row for row in costs["stages"]}
    reference_clips, reference_folds = stages["synth"]["kernel_count"], stages["train"]["jobs"]
    per_clip = sum(stages[name]["job_seconds"] for name in PER_SAMPLE) / reference_clips
    train = stages["train"]
    kernel_total = train["kernel_s"] * train["kernel_count"]  # one-thread epochs of every fold
    startup = (train["job_seconds"] - kernel_total) / reference_folds
    epochs_per_fold = train["kernel_count"] / reference_folds
    epoch_per_clip = train["kernel_s"] / (reference_clips * (reference_folds - 1) / reference_folds)
    fold = startup + epochs_per_fold * epoch_per_clip * clips * (subjects - 1) / subjects
    cores = node_cores * nodes
    per_sample = per_clip * clips / cores
    training = fold * math.ceil(subjects / cores)
    return {"per_sample_h": per_sample / 3600, "train_h": training / 3600, "total_h": (per_sample + training) / 3600,
            "core_h": (per_clip * clips + fold * subjects) / 3600, "fold_s": fold}  # fmt: skip


def scale_table(record: dict[str, Any]) -> str:
    """docs/cluster.md's table of a SAMM-sized record."""
    one, two = record["cores"]["1"], record["cores"]["2"]
    rows = [
        (f"`snakemake -n` before the run ({one['jobs']} jobs planned)", f"{one['dry_run_s']:.2f} s",
         f"{two['dry_run_s']:.2f} s", "≤ 3 s"),
        ("`snakemake -n` after the run (nothing to do)", f"{one['dry_run_done_s']:.2f} s",
         f"{two['dry_run_done_s']:.2f} s", "≤ 3 s"),
        ("`dvc status` of the samm stages, after the run", f"{one['dvc_status_s']:.2f} s",
         f"{two['dvc_status_s']:.2f} s", "≤ 2 s"),
        ("`dvc status` (all pipelines)", f"{one['dvc_status_all_s']:.2f} s", f"{two['dvc_status_all_s']:.2f} s",
         "≤ 2 s"),
        ("per-sample stages (face .. features), wall", f"{one['per_sample_s']:.0f} s", f"{two['per_sample_s']:.0f} s",
         ""),
        ("folds and evaluate, wall", f"{one['rest_s']:.0f} s", f"{two['rest_s']:.0f} s", ""),
        ("speed-up of the per-sample stages, cores 2 over cores 1", "",
         f"**{one['per_sample_s'] / two['per_sample_s']:.2f}x**", "≥ 1.8x"),
        ("speed-up of the whole run", "", f"**{one['run_s'] / two['run_s']:.2f}x**", ""),
    ]  # fmt: skip
    if "recording" in two:
        rows.append((f"recording the {two['recording']['stages']} per-sample stages in `dvc.lock`: "
                     "`dvc commit --force` / the run's one pass",
                     *(f"{run['recording']['dvc_commit_s']:.1f} s / {run['recording']['one_pass_s']:.1f} s"
                       for run in (one, two)), ""))  # fmt: skip
    if "parallel_efficiency" in record:  # what the machine itself allows two processes
        efficiency = record["parallel_efficiency"]["efficiency"]
        rows.append(("one kernel, two copies at once vs alone (the machine's parallel efficiency)", "",
                     f"{efficiency:.2f} (at most {2 * efficiency:.2f}x)", ""))  # fmt: skip
    lines = [f"| measure ({record['clips']} clips, {record['subjects']} subjects) | --cores 1 | --cores 2 | target |",
             "|---|---:|---:|---|"]  # fmt: skip
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def large_table(record: dict[str, Any]) -> str:
    """docs/cluster.md's table of a CAS(ME)^3-sized record (planning and the per-sample stages)."""
    run = record["run"]
    rows = [
        ("ingest (reads the workbook, checks and hashes every frame), --cores 2", f"{run['ingest_s']:.0f} s", ""),
        (f"`snakemake -n` ({run['jobs']} jobs planned)", f"{run['dry_run_s']:.2f} s", "≤ 3 s"),
        ("`dvc status` of the samm stages, first call", f"{run['dvc_status_first_s']:.2f} s", ""),
        ("`dvc status` of the samm stages, again", f"{run['dvc_status_s']:.2f} s", "≤ 2 s"),
        ("per-sample stages (face .. features), --cores 2, wall", f"{run['per_sample_s']:.0f} s", ""),
    ]
    if "run_1core" in record:
        one = record["run_1core"]["per_sample_s"]
        rows += [("per-sample stages, --cores 1, wall", f"{one:.0f} s", ""),
                 ("speed-up of the per-sample stages, cores 2 over cores 1", f"**{one / run['per_sample_s']:.2f}x**",
                  "≥ 1.8x")]  # fmt: skip
    if "parallel_efficiency" in record:
        efficiency = record["parallel_efficiency"]["efficiency"]
        rows.append(("one kernel, two copies at once vs alone (the machine's parallel efficiency)",
                     f"{efficiency:.2f}", ""))  # fmt: skip
    lines = [f"| measure ({record['clips']} clips, {record['subjects']} subjects) | value | target |", "|---|---:|---|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def memory_table(small: dict[str, Any], large: dict[str, Any]) -> str:
    """Peak memory per stage job at both sizes (the per-sample stages should not grow with the dataset)."""
    sizes = (small["cores"]["2"]["stages"], large["run"]["stages"])
    lines = [f"| stage | jobs ({small['clips']} / {large['clips']} clips) | job seconds | peak MiB, job process "
             "| peak MiB, one worker |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for stage in ("ingest", *PER_SAMPLE):
        a, b = (figures.get(stage, {}) for figures in sizes)
        if not a or not b:
            continue
        lines.append(
            f"| `{stage}` | {a['jobs']} / {b['jobs']} | {a['job_s']:.0f} / {b['job_s']:.0f} | "
            f"{a['peak_mib']} / {b['peak_mib']} | {_mib(a['worker_peak_mib'])} / {_mib(b['worker_peak_mib'])} |"
        )
    return "\n".join(lines)


def _mib(value: int) -> str:
    return str(value) if value else "-"  # no worker processes (one thread per job)


def projection_table(costs: dict[str, Any], clips: int = LARGE["clips"], subjects: int = LARGE["subjects"]) -> str:
    """What a CAS(ME)^3-sized default run would take, from :func:`projection`."""
    lines = ["| where | cores | per-sample stages (min) | 100 folds (min) | total (min) |", "|---|---:|---:|---:|---:|"]
    places = (("this machine", 2, 1), ("one 32-core node", 32, 1), ("10 nodes of 32 cores", 32, 10))
    for where, node_cores, nodes in places:
        p = projection(costs, clips, subjects, node_cores, nodes)
        minutes = [60 * p[key] for key in ("per_sample_h", "train_h", "total_h")]
        lines.append(f"| {where} | {node_cores * nodes} | " + " | ".join(f"{m:.1f}" for m in minutes) + " |")
    return "\n".join(lines)


def overhead_sentence(small: dict[str, Any], large: dict[str, Any]) -> str:
    """docs/cluster.md's account of the per-sample speed-up: the jobs' own time, the fixed part, the machine."""
    one, two = small["cores"]["1"], small["cores"]["2"]
    jobs = [sum(run["stages"][stage]["job_s"] for stage in PER_SAMPLE) for run in (one, two)]
    fixed = one["per_sample_s"] - jobs[0]
    efficiency = small["parallel_efficiency"]["efficiency"]
    beside = (
        "each job a little slower beside another: at the start of the same run this virtual machine's two CPUs "
        f"ran one single-threaded kernel side by side at {efficiency:.2f} of its speed alone"
        if jobs[1] > 1.02 * jobs[0]
        else f"a job as fast beside another as alone: the machine's parallel efficiency was {efficiency:.2f}"
    )
    head = (
        f"the per-sample jobs' own seconds add up to {jobs[0]:.0f} with one core and {jobs[1]:.0f} with two "
        f"({beside}), and the "
        f"other {fixed:.0f} s of the one-core run do not shrink with more cores (Snakemake's start-up, each "
        f"job's Python start-up, and after the last job recording the finished stages in `dvc.lock`"
        f"{_recording_clause(one)}): {jobs[1] / 2:.0f} + {fixed:.0f} = {jobs[1] / 2 + fixed:.0f} s against the "
        f"measured {two['per_sample_s']:.0f} s"
    )
    if "run_1core" not in large:
        return head
    runs = (large["run_1core"], large["run"])
    big = [sum(run["stages"][stage]["job_s"] for stage in PER_SAMPLE) for run in runs]
    big_fixed = runs[0]["per_sample_s"] - big[0]
    idle = runs[1]["per_sample_s"] - (big[1] / 2 + big_fixed)
    return head + (
        f". On the CAS(ME)³-sized set ({runs[0]['per_sample_s']:.0f} s with one core, {runs[1]['per_sample_s']:.0f} "
        f"s with two: {runs[0]['per_sample_s'] / runs[1]['per_sample_s']:.2f}x) the jobs' seconds are {big[0]:.0f} "
        f"and {big[1]:.0f} and the fixed part {big_fixed:.0f} s, but {idle:.0f} s of the two-core run leave a core "
        "idle, plausibly at the end, when the last of the 4 shards (of unequal size) still runs its jobs alone; "
        "more shards than cores would even this out at the cost of more job start-ups (not measured)"
    )


def history_sentence(earlier: tuple[dict[str, Any], dict[str, Any]], now: tuple[dict[str, Any], dict[str, Any]]) -> str:
    """docs/cluster.md's comparison of the SAMM- and CAS(ME)^3-sized records with earlier ones (kept beside them)."""

    def speed_ups(small: dict[str, Any], large: dict[str, Any]) -> str:
        first = small["cores"]["1"]["per_sample_s"] / small["cores"]["2"]["per_sample_s"]
        second = large["run_1core"]["per_sample_s"] / large["run"]["per_sample_s"]
        return f"{first:.2f}x and {second:.2f}x"

    before, after = earlier[1]["parallel_efficiency"]["alone_s"], now[1]["parallel_efficiency"]["alone_s"]
    return (
        f"the speed-ups of the per-sample stages are {speed_ups(*now)} ({now[0]['date']}), against "
        f"{speed_ups(*earlier)} in the records of {earlier[0]['date']} (kept as "
        f"`workflow_scale-{earlier[0]['date']}.json` and `workflow_scale_large-{earlier[1]['date']}.json`); the "
        "same single-threaded kernel ran "
        f"{after / before:.2f}x {'slower' if after > before else 'faster'} alone on this machine than then "
        f"({after:.2f} s against {before:.2f} s)"
    )


def _recording_clause(run: dict[str, Any]) -> str:
    if "recording" not in run:
        return ", which hashes the new outputs"
    seconds = run["recording"]
    return (
        f", {seconds['one_pass_s']:.1f} s in one pass over the project where `dvc commit --force` of the same "
        f"{seconds['stages']} stages takes {seconds['dvc_commit_s']:.1f} s, rereading its YAML files for each stage"
    )


def readme_sentence(small: dict[str, Any], costs: dict[str, Any], large: dict[str, Any] | None = None) -> str:
    """The README's one-sentence summary of the scale record and the projection."""
    one, two = small["cores"]["1"], small["cores"]["2"]
    hours = [
        projection(costs, LARGE["clips"], LARGE["subjects"], c, n)["total_h"] for c, n in ((2, 1), (32, 1), (32, 10))
    ]
    bigger = ""
    if large and "run_1core" in large:
        bigger = f" ({large['run_1core']['per_sample_s'] / large['run']['per_sample_s']:.2f}x for a CAS(ME)³-sized one)"
    return (
        f"with 2 cores the per-sample stages of a SAMM-sized dataset ({small['clips']} clips) run "
        f"{one['per_sample_s'] / two['per_sample_s']:.2f}x faster than with 1{bigger}, and a CAS(ME)³-sized "
        f"default run (1,100 clips, 100 folds), projected from the default job's measured per-job costs, "
        f"would take about {hours[0]:.1f} h on this 2-core machine, {60 * hours[1]:.0f} "
        f"minutes on one 32-core node and {60 * hours[2]:.0f} minutes on 10 such nodes"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed afterwards")
    parser.add_argument("--keep", action="store_true", help="keep the working copies")
    parser.add_argument("--frame-size", type=int, default=160, help="synthetic frame size (px)")
    parser.add_argument("--face-size", type=int, default=64, help="face.size: aligned crop (px)")
    parser.add_argument("--frames", type=int, default=9, help="interpolate.frames")
    parser.add_argument("--epochs", type=int, default=5, help="train.epochs")
    parser.add_argument("--large", action="store_true", help="CAS(ME)^3-sized: planning and per-sample stages")
    parser.add_argument("--long", action="store_true", help="SAMM-LV-sized long videos: planning and ingest")
    parser.add_argument("--subjects", type=int, help=f"subjects (default {SUBJECTS}; --large {LARGE['subjects']})")
    parser.add_argument("--clips", type=int, help=f"clips (default {CLIPS}; --large {LARGE['clips']})")
    parser.add_argument("--output", type=Path, help="write the record (JSON) here")
    args = parser.parse_args()
    if args.long:
        return main_long(args)
    subjects = args.subjects or (LARGE["subjects"] if args.large else SUBJECTS)
    wanted = args.clips or (LARGE["clips"] if args.large else CLIPS)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="merec-scale-"))
    params = scale_params(args)
    record: dict[str, Any] = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "machine": cpu_description(),
        "command": "python benchmarks/workflow_scale.py" + (" --large" if args.large else ""),
        "settings": {
            "frame_size": args.frame_size,
            "face.size": args.face_size,
            "interpolate.frames": args.frames,
            "train.epochs": args.epochs,
            "ingest.shards": len(params["ingest"]["shards"]),
        },
        "subjects": subjects,
    }
    try:
        copies = {cores: workdir / f"cores-{cores}" for cores in (1, 2)}
        for path in copies.values():
            project_copy(path, params)
        first = next(iter(copies.values()))
        started = time.perf_counter()
        record["clips"] = scale_dataset(first / "data/raw/samm", args.frame_size, subjects, wanted)
        for path in list(copies.values())[1:]:
            shutil.copytree(first / "data/raw/samm", path / "data/raw/samm")
        print(f"dataset: {record['clips']} clips, {subjects} subjects ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr)  # fmt: skip
        record["parallel_efficiency"] = parallel_efficiency()
        print(f"parallel efficiency of this machine: {record['parallel_efficiency']}", file=sys.stderr, flush=True)
        if args.large:  # two cores with planning, then one core for the speed-up
            record["run"] = measure_large(copies[2], cores=2)
            record["run_1core"] = measure_large(copies[1], cores=1)
        else:
            record["cores"] = {str(cores): measure(path, cores) for cores, path in copies.items()}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = large_table(record) if args.large else scale_table(record)
    write_record(record, args.output, summary)
    return 0


def main_long(args: argparse.Namespace) -> int:
    """The SAMM-LV-sized measurement (``--long``) in one working copy."""
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="merec-scale-"))
    params = scale_params(args)
    params["long_videos"] = {"samm_lv": {"format": "samm_lv", "root": "data/raw/samm_lv"}}
    record: dict[str, Any] = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "machine": cpu_description(),
        "command": "python benchmarks/workflow_scale.py --long",
        "settings": {"frame_size": args.frame_size, "ingest.shards": len(params["ingest"]["shards"])},
        "cores": 2,
    }
    try:
        copy_root = workdir / "long"
        project_copy(copy_root, params)
        started = time.perf_counter()
        record["dataset"] = long_dataset(copy_root / "data/raw/samm_lv", workdir / "frames", args.frame_size)
        print(f"dataset: {record['dataset']} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        record["run"] = measure_long(copy_root, cores=record["cores"])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    write_record(record, args.output, long_table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
