"""RIFE HDv3 speed: merec's IFNet against the reference implementation, same inputs, same process.

Part 1 times one IFNet pass (the middle frame of a pair) at ``--size`` for several batch sizes,
alternating reference and merec runs so that both see the same machine load, and reports frames/s
and the speed ratio (median of ``--rounds`` rounds). Part 2 times whole clips resampled to 13
frames (the pipeline's use) per output frame: merec's ``flow_scale`` and ``bisection`` timestep
methods against the reference's per-output bisection loop (RIFE ``inference_img.py --ratio``).

Usage::

    python benchmarks/rife_speed.py [--threads 2] [--size 128] [--batch-sizes 1,4,8] [--rounds 7]
    python benchmarks/rife_speed.py --threads 1 --output benchmarks/results/rife_speed-1thread.json

docs/interpolation.md quotes the records (a test keeps them in step).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _record import cpu_description, write_record
from _reference import load_reference_net, reference_bisection, reference_middle

from merec.interpolate import RifeParams, source_positions, split_positions
from merec.interpolate.rife import RifeInterpolator


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str, min_time: float) -> float:
    """Seconds per call: repeat ``fn`` for at least ``min_time`` seconds."""
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - started
        if elapsed >= min_time:
            return elapsed / calls


def smooth_frames(n: int, size: int, seed: int) -> np.ndarray:
    """Random smooth RGB frames (uint8) drifting by about a pixel per frame."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 8 + 4, size // 8 + 4, generator=gen)
    big = F.interpolate(coarse, size=(size + 4 * n, size + 4 * n), mode="bicubic").clamp(0, 1)
    frames = [big[0, :, k : k + size, k // 2 : k // 2 + size] for k in range(n)]
    return (torch.stack(frames).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def bench_ifnet(args: argparse.Namespace, device: str) -> list[dict[str, float]]:
    merec = RifeInterpolator(RifeParams.from_mapping({"batch_size": max(args.batch_sizes)}), device)
    fast = RifeInterpolator(
        RifeParams.from_mapping({"batch_size": max(args.batch_sizes), "precision": "bfloat16"}), device
    )
    reference = load_reference_net(device)
    rows = []
    for batch in args.batch_sizes:
        frames = torch.from_numpy(smooth_frames(2 * batch, args.size, seed=batch))
        frames = frames.permute(0, 3, 1, 2).float().div(255).to(device)
        img0, img1 = frames[:batch], frames[batch:]
        runs = {
            "reference": lambda img0=img0, img1=img1: reference_middle(reference, img0, img1),
            "float32": lambda img0=img0, img1=img1: merec._run(img0, img1).merged,
            "bfloat16": lambda img0=img0, img1=img1: fast._run(img0, img1).merged,
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        with torch.inference_mode():
            outputs = {name: run() for name, run in runs.items()}
            for run in runs.values():  # warm-up (oneDNN primitive creation, allocations)
                run()
            for _ in range(args.rounds):
                for name, run in runs.items():
                    times[name].append(time_call(run, device, args.min_time) / batch * 1e3)
        row = {"batch": batch, "reference_ms": statistics.median(times["reference"])}
        for name in ("float32", "bfloat16"):
            row[f"{name}_ms"] = statistics.median(times[name])
            row[f"{name}_ratio"] = statistics.median(
                r / o for r, o in zip(times["reference"], times[name], strict=True)
            )
            row[f"{name}_max_diff"] = float((outputs[name] - outputs["reference"]).abs().max())
        rows.append(row)
        print(ifnet_table([row]).splitlines()[-1], flush=True)
    return rows


def ifnet_table(rows: list[dict[str, float]]) -> str:
    """One IFNet pass: ms per frame, ratio to the reference and largest difference, per batch size."""
    lines = [
        "| batch | reference | merec float32 | ratio | max diff | merec bfloat16 | ratio | max diff |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [f"{row['batch']}", f"{row['reference_ms']:.1f}"]
        for name in ("float32", "bfloat16"):
            cells += [f"{row[name + '_ms']:.1f}", f"{row[name + '_ratio']:.2f}x", f"{row[name + '_max_diff']:.1e}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_clips(args: argparse.Namespace, device: str) -> list[dict[str, float]]:
    rows = []
    reference = load_reference_net(device)
    methods = {
        name: RifeInterpolator(RifeParams.from_mapping({"timestep": name, "batch_size": 8}), device)
        for name in ("bisection", "flow_scale")
    }
    for n_source in args.clip_lengths:
        clip = smooth_frames(n_source, args.size, seed=n_source)
        positions = source_positions(n_source, 13)
        left, frac = split_positions(positions, n_source)
        tensors = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div(255).to(device)

        def run_reference(
            tensors: torch.Tensor = tensors, left: np.ndarray = left, frac: np.ndarray = frac
        ) -> dict[int, np.ndarray]:
            # The MER code's loop: one output at a time, each with its own bisection.
            frames = {}
            for output, (index, t) in enumerate(zip(left, frac, strict=True)):
                if t == 0:
                    continue
                out = reference_bisection(reference, tensors[index : index + 1], tensors[index + 1 : index + 2], t)
                frames[output] = (out[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            return frames

        timings: dict[str, list[float]] = {"reference": [], "bisection": [], "flow_scale": []}
        with torch.inference_mode():
            for _ in range(args.rounds):
                timings["reference"].append(time_call(run_reference, device, args.min_time))
                for name, interp in methods.items():
                    timings[name].append(
                        time_call(
                            lambda interp=interp, clip=clip, positions=positions: interp.resample(clip, positions),
                            device,
                            args.min_time,
                        )
                    )
            expected = run_reference()
            ours = methods["bisection"].resample(clip, positions)
        row = {f"{k}_ms": statistics.median(v) / 13 * 1e3 for k, v in timings.items()}
        row |= {
            "source_frames": n_source,
            # merec's bisection returns the reference procedure's frames: largest difference in grey levels
            "bisection_max_diff": max(
                int(np.abs(ours[i].astype(int) - f.astype(int)).max()) for i, f in expected.items()
            ),
        }
        for name in ("bisection", "flow_scale"):
            row[f"{name}_ratio"] = statistics.median(
                r / o for r, o in zip(timings["reference"], timings[name], strict=True)
            )
        rows.append(row)
        print(clip_table([row]).splitlines()[-1], flush=True)
    return rows


def clip_table(rows: list[dict[str, float]]) -> str:
    """Clips resampled to 13 frames: ms per output frame, and merec's ratios to the reference procedure."""
    lines = [
        "| source frames | reference bisection | merec `bisection` | ratio | max diff (grey levels) "
        "| merec `flow_scale` | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['source_frames']} | {row['reference_ms']:.1f} | {row['bisection_ms']:.1f} | "
            f"{row['bisection_ratio']:.2f}x | {row['bisection_max_diff']} | {row['flow_scale_ms']:.1f} | "
            f"{row['flow_scale_ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,4,8", help="comma-separated")
    parser.add_argument("--clip-lengths", default="3,5,30", help="source frames per clip")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timing")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--skip-clips", action="store_true")
    parser.add_argument("--output", type=Path, help="write the record (JSON) here")
    args = parser.parse_args()
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.clip_lengths = [int(n) for n in args.clip_lengths.split(",")]
    if args.size % 32:
        parser.error("--size must be a multiple of 32 (the reference IFNet does not pad)")
    torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name() if device == "cuda" else cpu_description()
    print(f"RIFE HDv3, torch {torch.__version__}, {device} ({where}), {args.threads} CPU thread(s)", flush=True)
    record = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "machine": where,
        "torch": torch.__version__,
        "command": "python benchmarks/rife_speed.py "
        + " ".join(sys.argv[1:]).replace(f"--output {args.output}", "").strip(),
        "threads": args.threads,
        "size": args.size,
        "rounds": args.rounds,
        "ifnet": bench_ifnet(args, device),
        "clips": [] if args.skip_clips else bench_clips(args, device),
    }
    write_record(record, args.output, ifnet_table(record["ifnet"]) + "\n\n" + clip_table(record["clips"]))


if __name__ == "__main__":
    main()
