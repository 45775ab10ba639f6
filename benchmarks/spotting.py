"""Spotting on the embedded long-video dataset: both spotters against the random-interval control.

Protocol (nothing chosen on the data it is reported on):

1. **Development draw** (``synth_lv.seed`` = ``--dev-seed``, default 1000; otherwise the default
   params): the threshold fraction ``p`` of each method, and the baseline's ``contrast``, are
   chosen on a grid by overall F1 (the learned spotter with its first seed). The choice is
   recorded; params.yaml's defaults are set from it (a test keeps them in step).
2. **Evaluation draws** (``--seeds``, default 0 1 2 3; seed 0 is the default dataset): each method
   with the chosen settings, the learned spotter with every seed of ``--train-seeds``. Each
   draw's F1 is pooled over its videos (MEGC: TP/FP/FN summed); per method the headline is the
   mean over draws (the learned spotter's: mean over its seeds first) with the sd and a 95%
   t-interval over draws, the paired learned - baseline difference likewise, and the random-
   interval control's F1 per draw (mean over its draws).

    python benchmarks/spotting.py --output benchmarks/results/spotting.json     # about 20 min on 2 cores
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import cpu_description, write_record

REPO = Path(__file__).resolve().parent.parent
P_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
KINDS = ("micro", "macro", "overall")


def _defaults() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def prepare(folder: Path, seed: int, params: dict[str, Any]) -> Path:
    """Generate one draw of the long-video dataset, ingest it, compute its spotting features (one shard)."""
    from merec.datasets.long_ingest import run as ingest
    from merec.datasets.settings import IngestParams
    from merec.spotting.features import SpotFeatureParams
    from merec.spotting.features import run as features
    from merec.synth.long_videos import LongVideoParams, generate_long_videos

    generate_long_videos(folder / "raw", LongVideoParams.from_mapping({**params["synth_lv"], "seed": seed}))
    videos = folder / "videos.csv"
    ingest("synth_lv", {"format": "samm_lv", "root": str(folder / "raw")}, videos,
           IngestParams.from_mapping({**params["ingest"], "shards": [0]}))  # fmt: skip
    features(folder / "videos" / "shard-0.json", videos, folder / "features" / "shard-0.json",
             SpotFeatureParams.from_mapping(params["spot_features"]))  # fmt: skip
    shutil.rmtree(folder / "raw")  # the frames are not needed any more
    return videos


def curves_of(folder: Path, videos: Path, method: str, spot: dict[str, Any]) -> dict[int, Any]:
    """Seed -> curves of one method on one prepared draw."""
    from merec.spotting.settings import SpotParams
    from merec.spotting.stage import read_curves, score_all, score_baseline

    params = SpotParams.from_mapping({**spot, "method": method})
    out = folder / "scores" / method / f"contrast-{params.baseline.contrast}"
    if method == "baseline":
        score_baseline(videos, [folder / "features"], out, params)
    else:
        score_all(videos, [folder / "features"], out, params, "all", "all")
    return read_curves([out])


def scores(videos: Path, curves: Any, p: float, control_draws: int = 0) -> dict[str, Any]:
    """F1 per type of one seed's curves at threshold ``p`` (and the random-interval control's)."""
    from merec.datasets.long_ingest import read_intervals, read_videos
    from merec.spotting.metrics import spotting_scores
    from merec.spotting.stage import random_control, spot_videos

    table, truth = read_videos(videos), read_intervals(videos)
    predictions = spot_videos(curves, table, p)
    out = {kind: values["f1"] for kind, values in spotting_scores(truth, predictions).items()}
    if control_draws:
        control = random_control(predictions, truth, table, control_draws, 0)
        out["control"] = {kind: control[kind]["f1_mean"] for kind in KINDS}
    return out


def develop(folder: Path, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The grid on the development draw and the settings chosen on it."""
    videos = prepare(folder, seed, params)
    spot = params["spot"]
    grid: dict[str, Any] = {}
    for contrast in (True, False):
        by_seed = curves_of(folder, videos, "baseline", {**spot, "baseline": {"contrast": contrast}})
        grid[f"baseline contrast={contrast}"] = {p: scores(videos, by_seed[0], p) for p in P_GRID}
    by_seed = curves_of(folder, videos, "learned", {**spot, "learned": {**spot["learned"], "seeds": [0]}})
    grid["learned"] = {p: scores(videos, by_seed[0], p) for p in P_GRID}

    def best(name: str) -> tuple[float, float]:
        p = max(grid[name], key=lambda value: (grid[name][value]["overall"], -value))
        return p, grid[name][p]["overall"]

    contrast = best("baseline contrast=True")[1] >= best("baseline contrast=False")[1]
    return {
        "seed": seed,
        "grid": {name: {str(p): v for p, v in rows.items()} for name, rows in grid.items()},
        "chosen": {
            "baseline": {"contrast": contrast, "p": best(f"baseline contrast={contrast}")[0]},
            "learned": {"p": best("learned")[0]},
        },
    }


def interval(values: list[float]) -> list[float]:
    """95% t-interval of the mean of ``values`` (one per draw)."""
    mean, n = float(np.mean(values)), len(values)
    if n < 2:
        return [mean, mean]
    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return [mean - half, mean + half]


def evaluate(root: Path, params: dict[str, Any], chosen: dict[str, Any], seeds: list[int], train_seeds: list[int],
             control_draws: int) -> dict[str, Any]:  # fmt: skip
    """Both methods with the chosen settings on every evaluation draw."""
    spot = {**params["spot"], "baseline": {"contrast": chosen["baseline"]["contrast"]},
            "learned": {**params["spot"]["learned"], "seeds": train_seeds}}  # fmt: skip
    draws = []
    for seed in seeds:
        folder = root / f"draw-{seed}"
        started = time.perf_counter()
        videos = prepare(folder, seed, params)
        baseline = scores(
            videos, curves_of(folder, videos, "baseline", spot)[0], chosen["baseline"]["p"], control_draws
        )
        learned = {
            str(s): scores(videos, c, chosen["learned"]["p"], control_draws)
            for s, c in curves_of(folder, videos, "learned", spot).items()
        }
        draws.append({"seed": seed, "baseline": baseline, "learned": learned,
                      "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
        print(f"draw {seed}: baseline {baseline['overall']:.3f}, learned "
              f"{np.mean([v['overall'] for v in learned.values()]):.3f}", file=sys.stderr)  # fmt: skip
        shutil.rmtree(folder)
    return {"draws": draws, "summary": summarise(draws)}


def summarise(draws: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method and type: mean, sd and 95% interval over draws; the paired difference; the control."""

    def per_draw(method: str, kind: str, control: bool = False) -> list[float]:
        out = []
        for draw in draws:
            runs = [draw[method]] if method == "baseline" else list(draw[method].values())
            out.append(float(np.mean([(run["control"] if control else run)[kind] for run in runs])))
        return out

    summary: dict[str, Any] = {}
    for method in ("baseline", "learned"):
        summary[method] = {}
        for kind in KINDS:
            values = per_draw(method, kind)
            summary[method][kind] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)),
                                     "ci95": interval(values),
                                     "control": float(np.mean(per_draw(method, kind, control=True)))}  # fmt: skip
        summary[method]["above_control"] = all(
            a > b for a, b in zip(per_draw(method, "overall"), per_draw(method, "overall", True), strict=True)
        )
    summary["learned_minus_baseline"] = {}
    for kind in KINDS:
        diff = [a - b for a, b in zip(per_draw("learned", kind), per_draw("baseline", kind), strict=True)]
        ci = interval(diff)
        summary["learned_minus_baseline"][kind] = {"mean": float(np.mean(diff)), "ci95": ci,
                                                   "resolved": bool(ci[0] > 0 or ci[1] < 0)}  # fmt: skip
    return summary


def table(record: dict[str, Any]) -> str:
    """The README's spotting table (Markdown) from a record."""
    summary = record["summary"]
    n = len(record["evaluation"]["draws"]) if "evaluation" in record else len(record["draws"])
    rows = [
        "| spotter | micro F1 | macro F1 | overall F1 | random-interval control (overall) |",
        "|---|---|---|---|---|",
    ]
    for method, label in (("baseline", "training-free baseline"), ("learned", "learned (SoftNet-style)")):
        cells = [f"{summary[method][k]['mean']:.3f} ({summary[method][k]['ci95'][0]:.3f}-"
                 f"{summary[method][k]['ci95'][1]:.3f})" for k in KINDS]  # fmt: skip
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {summary[method]['overall']['control']:.3f} |")
    diff = summary["learned_minus_baseline"]["overall"]
    verdict = "resolved" if diff["resolved"] else "not resolved"
    rows.append("")
    rows.append(f"Mean over {n} evaluation draws (95% t-interval over draws); learned - baseline overall F1 "
                f"{diff['mean']:+.3f} ({diff['ci95'][0]:+.3f} to {diff['ci95'][1]:+.3f}): {verdict}.")  # fmt: skip
    return "\n".join(rows)


def published_sentence(published: dict[str, Any]) -> str:
    """The docs' sentence on published F1 (``benchmarks/published_spotting.json``)."""
    parts = [f"{m['casme2_lv']:.2f} / {m['samm_lv']:.2f} for {m['name']}" for m in published["methods"].values()]
    return "the published overall F1 on CAS(ME)² and SAMM-LV is " + " and ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-seed", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--control-draws", type=int, default=200)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    from merec.runtime import setup_logging

    setup_logging()
    params = _defaults()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="merec-spotting-") as tmp:
        development = develop(Path(tmp) / "development", params, args.dev_seed)
        print(f"chosen on the development draw: {development['chosen']}", file=sys.stderr)
        evaluation = evaluate(Path(tmp), params, development["chosen"], args.seeds, args.train_seeds,
                              args.control_draws)  # fmt: skip
    record = {
        "command": " ".join(["python benchmarks/spotting.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": cpu_description(),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "params": {key: params[key] for key in ("synth_lv", "spot_features", "spot")},
        "development": development,
        "evaluation": evaluation,
        "summary": evaluation["summary"],
    }
    write_record(record, args.output, table(record))


if __name__ == "__main__":
    main()
