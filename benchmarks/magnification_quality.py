"""Magnification quality on held-out pairs with known motion: SSIM against the true magnified frame.

Two sources of pairs, both never seen in training:

* ``synthetic``: scenes from :mod:`merec.magnify.training.pairs` drawn from a different seed
  (``--seed``, default 20260101; training uses seed 0 and its validation stream 7919) at 128 x 128,
  foreground and background translating independently; the larger layer motion is ``motion`` px.
* ``face``: the held-out ``skimage.data.astronaut`` face (128 x 128) deformed by 2-4 smooth local
  bumps whose peak displacement is ``motion`` px (``benchmarks/scenes.py``).

For every input motion (0.05-1 px) and amplification (2, 5, 10 as used in MER, and ``10 / motion``
as in Oh et al., i.e. a 10 px magnified motion), each method gets the two-frame clip
``[frame(t=0), frame(t=1)]`` (uint8, no added noise unless ``--noise``) and its output frame 1 is
compared with ``frame(t=alpha)`` by SSIM (Gaussian window, sigma 1.5, RGB). Methods:

* ``none``: the input frame 1 itself (Oh et al.'s baseline),
* ``evm``: ``merec.magnify.evm.EulerianMagnifier(alpha)`` with its default options,
* ``evm_matched``: the same with ``alpha - 1``; EVM adds ``alpha * change`` to the frame, so its
  total motion is ``(1 + alpha)`` times the input's; ``alpha - 1`` matches the ground truth,
* ``magnet``: :class:`merec.magnify.magnet.MagNetMagnifier` (``--checkpoint``, default: shipped).

Usage::

    python benchmarks/magnification_quality.py --pairs 8 [--checkpoint PATH] [--csv out.csv]
    python benchmarks/magnification_quality.py --pairs 8 --json benchmarks/results/magnification_quality.json

docs/magnification.md quotes the tables :func:`markdown` makes of the JSON (a test keeps them in step).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scenes import face_scene

from merec.magnify.evm import EulerianMagnifier
from merec.magnify.magnet import MagNetMagnifier
from merec.magnify.params import EvmParams, MagnetParams
from merec.magnify.training.loop import ssim_uint8
from merec.magnify.training.pairs import PairConfig, poisson_noise, quantise, random_scene

MOTIONS = (0.05, 0.1, 0.2, 0.5, 1.0)
MER_ALPHAS = (2.0, 5.0, 10.0)
METHODS = ("none", "evm", "evm_matched", "magnet")


def clip_and_truth(
    source: str, rng: np.random.Generator, motion: float, alpha: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """(2, 128, 128, 3) uint8 input clip and the uint8 ground-truth magnified frame."""
    if source == "synthetic":
        config = PairConfig(crop=128, max_magnified=12.0, max_motion=2.0)
        scene, _ = random_scene(rng, config, motion=motion, alpha=alpha)
    else:
        scene = face_scene(rng, motion)
    frames = [scene.render(0.0), scene.render(1.0)]
    if noise > 0:
        frames = [poisson_noise(rng, f, noise) for f in frames]
    return np.stack([quantise(f) for f in frames]), quantise(scene.render(alpha))


def run(pairs: int, seed: int, checkpoint: str | None, noise: float, device: str) -> pd.DataFrame:
    magnet = MagNetMagnifier(1.0, MagnetParams.from_mapping({"checkpoint": checkpoint} if checkpoint else {}), device)

    def methods(alpha: float) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        magnet.alpha = alpha
        return {
            "none": lambda clip: clip,
            "evm": EulerianMagnifier(alpha, EvmParams.from_mapping()),
            "evm_matched": EulerianMagnifier(max(alpha - 1.0, 0.0), EvmParams.from_mapping()),
            "magnet": magnet,
        }

    rows = []
    for source in ("synthetic", "face"):
        for motion in MOTIONS:
            alphas = sorted({*MER_ALPHAS, 10.0 / motion})
            for alpha in alphas:
                kind = "mer" if alpha in MER_ALPHAS else "10/motion"
                rng = np.random.default_rng([seed, int(motion * 1000), int(alpha * 100)])
                scores: dict[str, list[float]] = {name: [] for name in METHODS}
                for _ in range(pairs):
                    clip, truth = clip_and_truth(source, rng, motion, alpha, noise)
                    for name, method in methods(alpha).items():
                        scores[name].append(ssim_uint8(method(clip)[1], truth))
                rows.append(
                    {
                        "source": source,
                        "motion_px": motion,
                        "alpha": round(alpha, 2),
                        "regime": kind,
                        **{name: float(np.mean(values)) for name, values in scores.items()},
                    }
                )
    return pd.DataFrame(rows)


def _cells(values: dict[str, float]) -> str:
    best = max(values.values())
    return " | ".join(f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in values.values())


def markdown(record: dict) -> str:
    """The docs' summary and full tables of a ``--json`` record."""
    table = pd.DataFrame(record["rows"])
    names = {
        ("face", "mer"): "face (held-out astronaut, local bumps)",
        ("synthetic", "mer"): "synthetic (held-out seed)",
    }
    lines = ["| source | regime | " + " | ".join(METHODS) + " |", "|---|---|" + "---:|" * len(METHODS)]
    for (source, regime), group in table.groupby(["source", "regime"], sort=False):
        means = {name: round(float(group[name].mean()), 4) for name in METHODS}
        lines.append(f"| {names.get((source, regime), source)} | {regime} | {_cells(means)} |")
    overall = {name: round(float(table[name].mean()), 4) for name in METHODS}
    lines.append(f"| all {len(table)} conditions | | {_cells(overall)} |")
    wins = int((table["magnet"] > table[["evm", "evm_matched"]].max(axis=1)).sum())
    lines += ["", f"MagNet beats both EVM variants in **{wins} of {len(table)}** conditions.", ""]
    lines += ["| source | motion (px) | alpha | regime | " + " | ".join(METHODS) + " |"]
    lines += ["|---|---:|---:|---|" + "---:|" * len(METHODS)]
    for row in record["rows"]:
        values = {name: round(row[name], 4) for name in METHODS}
        lines.append(
            f"| {row['source']} | {row['motion_px']:g} | {row['alpha']:g} | {row['regime']} | {_cells(values)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=8, help="pairs per (source, motion, alpha)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--checkpoint", default=None, help="MagNet state dict (default: shipped)")
    parser.add_argument("--noise", type=float, default=0.0, help="Poisson std at mid-grey, levels")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--csv", default=None, help="also write the table as CSV")
    parser.add_argument("--json", default=None, help="also write every number (the file the docs quote)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    table = run(args.pairs, args.seed, args.checkpoint, args.noise, args.device)
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nmean SSIM by source and regime:")
    summary = table.groupby(["source", "regime"])[list(METHODS)].mean()
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    overall = table[list(METHODS)].mean()
    print("\noverall mean SSIM:", ", ".join(f"{k} {v:.4f}" for k, v in overall.items()))
    wins = (table["magnet"] > table[["evm", "evm_matched"]].max(axis=1)).sum()
    print(f"magnet beats both EVM variants in {wins}/{len(table)} conditions")
    print(
        f"({args.pairs} pairs per condition, seed {args.seed}, noise {args.noise}; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), {time.perf_counter() - started:.0f} s)"
    )
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.json:
        record = {
            "command": " ".join(["python", "benchmarks/magnification_quality.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"),
            "pairs": args.pairs,
            "seed": args.seed,
            "noise": args.noise,
            "rows": table.to_dict(orient="records"),
        }
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=1)
            handle.write("\n")
        print(markdown(record))


if __name__ == "__main__":
    main()
