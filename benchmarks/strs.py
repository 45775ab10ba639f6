"""Spot-then-recognize on the embedded long-video dataset: STRS of both spotters, and a control.

The whole pipeline runs through Snakemake (``results/synth_lv/spotting/strs.json``) in one working
copy of the project per evaluation draw (``synth_lv.seed`` = ``--seeds``, default 0 1 2 3; draw 0
is the default dataset), with the default params otherwise (the spotting thresholds were chosen on
the development draw by ``benchmarks/spotting.py``; nothing here is chosen). Per draw:

1. ``spot.method: baseline``, the recogniser with ``train.seeds`` = ``--train-seeds``;
2. ``spot.method: learned`` with ``spot.learned.seeds`` = ``--spot-seeds`` (only spotting and what
   follows rerun);
3. the control: the learned spotter's intervals, the recogniser trained with ``train.labels:
   shuffled`` (training labels permuted within each fold): its analysis F1 must fall to chance.

Each run's STRS is the mean over its (spotting seed, training seed) pairs; the headline is the mean
over draws with a 95% t-interval over draws, and the paired learned - baseline difference likewise.

    python benchmarks/strs.py --output benchmarks/results/strs.json     # about 40 min on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow" / "scripts"))
from _record import cpu_description, write_record
from ablation import make_copy, run_workflow, set_param
from spotting import interval

REPO = Path(__file__).resolve().parent.parent
TARGET = "results/synth_lv/spotting/strs.json"
RUNS = ("baseline", "learned", "shuffled")
MEASURES = ("strs", "spotting_f1", "analysis_f1")


def run_params(base: dict[str, Any], draw: int, run: str, spot_seeds: list[int], train_seeds: list[int]) -> dict:
    """params.yaml of one run of one draw."""
    params = copy.deepcopy(base)
    set_param(params, "synth_lv.seed", draw)
    set_param(params, "train.seeds", train_seeds)
    set_param(params, "spot.learned.seeds", spot_seeds)
    set_param(params, "spot.method", "baseline" if run == "baseline" else "learned")
    set_param(params, "train.labels", "shuffled" if run == "shuffled" else "real")
    return params


def one_run(workdir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Run the spot-then-recognize target with ``params`` in ``workdir``; the figures of its strs.json."""
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    started = time.perf_counter()
    run_workflow(workdir, TARGET, "2")
    report = json.loads((workdir / TARGET).read_text())
    spotting = json.loads((workdir / "results/synth_lv/spotting/spot_metrics.json").read_text())
    return {
        "minutes": round((time.perf_counter() - started) / 60, 2),
        **{measure: report["defined"][measure]["mean"] for measure in MEASURES},
        "compat_strs": report["compat"]["strs"]["mean"],
        "annotated_uf1": float(np.mean([a["uf1"] for a in report["annotated_clips"].values()])),
        "spotting_micro_f1": spotting["micro"]["f1"],
        "recognised_intervals": report["recognised_intervals"],
        "pairs": len(report["pairs"]),
    }


def paired(draws: list[dict[str, Any]], first: str, second: str, measure: str) -> dict[str, Any]:
    """Mean and 95% t-interval over draws of ``first - second`` in ``measure``; resolved if it excludes 0."""
    diff = [draw[first][measure] - draw[second][measure] for draw in draws]
    ci = interval(diff)
    return {"mean": float(np.mean(diff)), "ci95": ci, "resolved": bool(ci[0] > 0 or ci[1] < 0)}


def summarise(draws: list[dict[str, Any]]) -> dict[str, Any]:
    """Per run and measure: mean, sd and 95% t-interval over draws; learned - baseline paired."""
    summary: dict[str, Any] = {}
    for run in RUNS:
        summary[run] = {}
        for measure in (*MEASURES, "compat_strs", "annotated_uf1"):
            values = [draw[run][measure] for draw in draws]
            summary[run][measure] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)),
                                     "ci95": interval(values)}  # fmt: skip
    summary["learned_minus_baseline"] = paired(draws, "learned", "baseline", "strs")
    return summary


def _cell(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.3f} ({stat['ci95'][0]:.3f} to {stat['ci95'][1]:.3f})"


def _difference(name: str, stat: dict[str, Any]) -> str:
    verdict = "resolved" if stat["resolved"] else "not resolved"
    return f"{name} {stat['mean']:+.3f} ({stat['ci95'][0]:+.3f} to {stat['ci95'][1]:+.3f}): {verdict}"


def table(record: dict[str, Any]) -> str:
    """The docs' STRS table (Markdown) from a record."""
    summary, n = record["summary"], len(record["draws"])
    labels = {"baseline": "training-free baseline", "learned": "learned (SoftNet-style)",
              "shuffled": "control: learned spotter, recogniser on shuffled labels"}  # fmt: skip
    rows = ["| spotter | STRS | micro spotting F1 | analysis F1 | STRS (compat) | recogniser UF1 on annotated clips |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for run in RUNS:
        cells = [_cell(summary[run][m]) for m in (*MEASURES, "compat_strs", "annotated_uf1")]
        rows.append(f"| {labels[run]} | " + " | ".join(cells) + " |")
    draws = record["draws"]
    rows.append("")
    rows.append(f"Mean over {n} evaluation draws (95% t-interval over draws). Paired over draws: "
                + "; ".join([_difference("learned - baseline STRS", summary["learned_minus_baseline"]),
                             _difference("real - shuffled labels, analysis F1",
                                         paired(draws, "learned", "shuffled", "analysis_f1")),
                             _difference("STRS", paired(draws, "learned", "shuffled", "strs"))]) + ".")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--spot-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    started = time.perf_counter()
    draws = []
    with tempfile.TemporaryDirectory(prefix="merec-strs-") as tmp:
        for draw in args.seeds:
            workdir = Path(tmp) / f"draw-{draw}"
            make_copy(REPO, workdir, base, None)
            runs = {run: one_run(workdir, run_params(base, draw, run, args.spot_seeds, args.train_seeds))
                    for run in RUNS}  # fmt: skip
            draws.append({"seed": draw, **runs})
            print(f"draw {draw}: " + ", ".join(f"{run} STRS {runs[run]['strs']:.3f}" for run in RUNS), file=sys.stderr)
            shutil.rmtree(workdir)
    record = {
        "command": " ".join(["python benchmarks/strs.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": cpu_description(),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "spot_seeds": args.spot_seeds,
        "train_seeds": args.train_seeds,
        "params": {key: base[key] for key in ("synth_lv", "spot", "train")},
        "draws": draws,
        "summary": summarise(draws),
    }
    write_record(record, args.output, table(record))


if __name__ == "__main__":
    main()
