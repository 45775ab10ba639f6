"""``merec predict`` measured: a bundle on held-out long videos, throughput and memory on 2 cores.

1. **The bundle.** In a working copy of the project with the default params, Snakemake builds the
   spot-then-recognize target (``results/synth_lv/spotting/strs.json``: the LOSO figures) and
   ``results/synth_lv-spotted/model`` (``train_all``: the recogniser fitted on the annotated
   micro-expressions of every subject of the default long-video draw); ``merec export`` bundles it.
2. **Held-out videos.** New draws of the long-video generator (``synth_lv.seed`` = each of
   ``--heldout-seeds``; their subjects are new identities, morphs of the same two shipped portraits,
   that the bundle never saw), ingested like any long-video dataset. ``merec predict`` runs on each
   video's frame folder with its ``intervals.csv`` as the annotation; spotting (MEGC, IoU >= 0.5) and
   STRS are pooled over a draw's videos; the headline is the mean over draws with a 95% t-interval,
   beside the LOSO figures of the STRS record (``benchmarks/results/strs.json``, baseline spotter,
   same threshold) and of this build's draw. Nothing is chosen on these videos.
3. **Throughput.** One held-out video as a 640 x 360, 30 fps mp4 (face scaled to 300 px): the
   spotting pass's frames per second (the whole cost when nothing is found: the relative threshold
   always finds some interval, so the pass is timed on its own), the recognition pass's added
   seconds per micro-expression interval, and end to end.
4. **Memory.** Peak resident memory of ``merec predict`` (a fresh process each) on that mp4 and on
   one ``--longer`` times as long (the frames looped): it should not grow with the length.

    python benchmarks/predict.py --output benchmarks/results/predict.json     # about 25 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow" / "scripts"))
from _record import cpu_description, write_record
from ablation import make_copy, run_workflow
from spotting import interval

REPO = Path(__file__).resolve().parent.parent
LOSO_TARGET = "results/synth_lv/spotting/strs.json"
MODEL_TARGET = "results/synth_lv-spotted/model"


def build_bundle(workdir: Path) -> tuple[Path, dict[str, Any], float]:
    """The default project's spot-then-recognize run and its exported bundle; (bundle, LOSO figures, minutes)."""
    from merec.bundle import export
    from merec.config import load_params

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    make_copy(REPO, workdir, params, None)
    started = time.perf_counter()
    run_workflow(workdir, LOSO_TARGET, "2")
    run_workflow(workdir, MODEL_TARGET, "2")
    minutes = (time.perf_counter() - started) / 60
    report = json.loads((workdir / LOSO_TARGET).read_text())
    spotting = json.loads((workdir / "results/synth_lv/spotting/spot_metrics.json").read_text())
    loso = {
        "strs": report["defined"]["strs"]["mean"],
        "spotting_f1": report["defined"]["spotting_f1"]["mean"],
        "analysis_f1": report["defined"]["analysis_f1"]["mean"],
        "spotting_micro_f1": spotting["micro"]["f1"],
        "spotting_macro_f1": spotting["macro"]["f1"],
    }
    params = load_params(workdir / "params.yaml")
    bundle = export(workdir / "results" / "synth_lv-spotted", workdir / "model.merec", params)
    return bundle, loso, minutes


def held_out_draw(root: Path, seed: int, **changes: Any) -> Path:
    """A new long-video draw (``changes``: to the default synth_lv params), ingested; returns its
    videos.csv (intervals.csv beside it)."""
    from merec.datasets.long_ingest import run as ingest
    from merec.datasets.settings import IngestParams
    from merec.synth.long_videos import LongVideoParams, generate_long_videos

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    generate_long_videos(root / "raw", LongVideoParams.from_mapping({**params["synth_lv"], **changes, "seed": seed}))
    videos = root / "videos.csv"
    ingest("heldout", {"format": "samm_lv", "root": str(root / "raw")}, videos,
           IngestParams.from_mapping({**params["ingest"], "shards": [0]}))  # fmt: skip
    return videos


def held_out_scores(bundle: Path, videos_csv: Path, out: Path) -> dict[str, Any]:
    """Spotting and STRS of the bundle pooled over the held-out videos."""
    from merec.datasets.long_ingest import read_videos
    from merec.predict import PredictOptions, predict
    from merec.predict.pipeline import read_annotation
    from merec.spotting.metrics import spotting_scores, strs

    intervals = videos_csv.with_name("intervals.csv")
    videos = read_videos(videos_csv)
    found, truth, seconds, frames = [], [], 0.0, 0
    classes: list[str] = []
    for _, video in videos.iterrows():
        options = PredictOptions(fps=float(video["fps"]), annotation=intervals, video=video["video"])
        summary = predict(video["folder"], bundle, out / video["video"], options)
        classes = summary["classes"]
        table = pd.read_csv(out / video["video"] / "predictions.csv", keep_default_na=False)
        found.append(table.assign(video=video["video"]))
        truth.append(read_annotation(intervals, video["video"]))
        seconds += summary["seconds"]
        frames += summary["frames"]
    predicted, annotated = pd.concat(found, ignore_index=True), pd.concat(truth, ignore_index=True)
    for column in ("onset", "offset"):
        predicted[column] = predicted[column].astype(int)
    scores = spotting_scores(annotated, predicted)
    micro = predicted[predicted["type"] == "micro"].assign(emotion=lambda t: t["class"].replace("", None))
    recognition = strs(annotated[annotated["type"] == "micro"], micro, classes)
    return {
        "videos": len(videos),
        "frames": frames,
        "seconds": round(seconds, 1),
        "annotated": {kind: int((annotated["type"] == kind).sum()) for kind in ("micro", "macro")},
        "spotting_micro_f1": scores["micro"]["f1"],
        "spotting_macro_f1": scores["macro"]["f1"],
        "spotting_f1": recognition["spotting"]["f1"],
        "analysis_f1": recognition["analysis"]["f1"],
        "strs": recognition["strs"],
    }


def write_mp4(path: Path, folder: Path, repeats: int = 1) -> int:
    """A 640 x 360, 30 fps mp4 of a frame folder (face scaled to 300 px, the frames ``repeats`` times)."""
    from merec.datasets.frames import list_frames

    files = list(list_frames(folder).values())
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
    for _ in range(repeats):
        for file in files:
            canvas = np.full((360, 640, 3), 90, np.uint8)
            canvas[30:330, 170:470] = cv2.resize(cv2.imread(str(file)), (300, 300))
            writer.write(canvas)
    writer.release()
    return len(files) * repeats


def predict_process(video: Path, bundle: Path, out: Path) -> dict[str, Any]:
    """``merec predict`` in a fresh process: its summary.json (peak memory among it)."""
    command = [sys.executable, "-m", "merec", "predict", str(video), "--model", str(bundle), "--output", str(out)]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "MEREC_NO_PROGRESS": "1"})
    return json.loads((out / "summary.json").read_text())


MEASURES = ("strs", "spotting_f1", "analysis_f1", "spotting_macro_f1")  # spotting_f1: STRS's, on micro-expressions


def summarise(values: list[float]) -> dict[str, Any]:
    """Mean, sd and 95% t-interval over draws."""
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "ci95": interval(values)}  # fmt: skip


def _cell(value: dict[str, Any]) -> str:
    return f"{value['mean']:.3f} ({value['ci95'][0]:.3f} to {value['ci95'][1]:.3f})"


def table(record: dict[str, Any]) -> str:
    """The docs' table (Markdown) from a record: held-out draws beside the LOSO record."""
    held, loso = record["held_out_summary"], record["loso_record"]
    rows = ["| evaluation | STRS | micro spotting F1 | analysis F1 | macro spotting F1 |",
            "|---|---|---|---|---|",
            f"| exported bundle on {len(record['held_out'])} held-out draws (new subjects) | "
            + " | ".join(_cell(held[m]) for m in MEASURES) + " |",
            f"| LOSO, {loso['draws']} draws (benchmarks/results/strs.json, baseline spotter) | "
            + " | ".join(_cell(loso[m]) if m in loso else "not in the record" for m in MEASURES) + " |"]  # fmt: skip
    speed, memory = record["throughput"], record["memory"]
    rows.append("")
    rows.append(
        f"Throughput on {record['cores']} cores ({speed['video']}, {speed['frames']} frames): spotting pass "
        f"{speed['spotting_frames_per_second']} frames/s, {speed['seconds_per_interval']} s added per micro-expression "
        f"interval ({speed['micro_intervals']} found), {speed['end_to_end_frames_per_second']} frames/s end to end. "
        f"Peak memory {memory['peak_mib'][0]:.0f} MiB for {memory['frames'][0]} frames, {memory['peak_mib'][1]:.0f} "
        f"MiB for {memory['frames'][1]} (x{memory['ratio_longer']})."
    )
    return "\n".join(rows)


def loso_record() -> dict[str, Any]:
    """The baseline spotter's LOSO figures in benchmarks/results/strs.json."""
    record = json.loads((REPO / "benchmarks" / "results" / "strs.json").read_text())
    summary = record["summary"]["baseline"]
    return {"draws": len(record["draws"]), "date": record["date"],
            **{m: summary[m] for m in ("strs", "spotting_f1", "analysis_f1") if m in summary}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path)
    parser.add_argument("--workdir", type=Path, help="working copy to use (default: a temporary folder)")
    parser.add_argument("--heldout-seeds", type=int, nargs="+", default=[1000, 1001, 1002])
    parser.add_argument("--longer", type=int, default=4)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="merec-predict-"))
    workdir = args.workdir or scratch / "repo"
    bundle, loso, build_minutes = build_bundle(workdir)
    held_out, first_draw = [], None
    for seed in args.heldout_seeds:
        videos_csv = held_out_draw(scratch / f"heldout-{seed}", seed)
        first_draw = first_draw or videos_csv
        held_out.append({"seed": seed, **held_out_scores(bundle, videos_csv, scratch / f"predictions-{seed}")})
        print(f"held-out draw {seed}: STRS {held_out[-1]['strs']:.3f}", file=sys.stderr)
    table_ = pd.read_csv(first_draw, dtype={"video": str})
    longest = table_.sort_values("frames").iloc[-1]
    short, long = scratch / "short.mp4", scratch / "long.mp4"
    n_short = write_mp4(short, Path(longest["folder"]), 1)
    n_long = write_mp4(long, Path(longest["folder"]), args.longer)
    first = predict_process(short, bundle, scratch / "short")
    second = predict_process(long, bundle, scratch / "long")
    micro = first["intervals"]["micro"]
    recognise_s = first["seconds"] - first["spotting_seconds"]
    result = {
        "command": " ".join(["python benchmarks/predict.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": cpu_description(),
        "cores": 2,
        "build_minutes": round(build_minutes, 1),
        "loso_this_build": loso,
        "loso_record": loso_record(),
        "held_out": held_out,
        "held_out_summary": {m: summarise([draw[m] for draw in held_out]) for m in MEASURES},
        "throughput": {
            "video": "640x360, 30 fps, mp4 (MPEG-4 part 2), face 300 px",
            "frames": n_short,
            "spotting_frames_per_second": round(n_short / first["spotting_seconds"], 1),
            "micro_intervals": micro,
            "seconds_per_interval": round(recognise_s / micro, 3) if micro else None,
            "end_to_end_frames_per_second": round(n_short / first["seconds"], 1),
            "seconds": first["seconds"],
        },
        "memory": {
            "frames": [n_short, n_long],
            "peak_mib": [first["peak_memory_mib"], second["peak_memory_mib"]],
            "ratio_longer": round(second["peak_memory_mib"] / first["peak_memory_mib"], 3),
        },
    }
    write_record(result, args.output, table(result))
    shutil.rmtree(scratch, ignore_errors=True)  # the working copy given with --workdir stays


if __name__ == "__main__":
    main()
