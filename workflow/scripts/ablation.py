"""Ablation table: what each stage contributes, UF1/UAR pooled over data draws, mean ± sd over seeds, with intervals.

Runs the Snakemake workflow once per configuration and data draw, each in its own working copy
under ``ablation/`` (git-ignored, as is any ``ablation*/``): the baseline is ``params.yaml`` as it
is, every other row changes one value of it (or several, ``;``-separated in one ``--row``). Copies
share finished artifacts through hard links and Snakemake's metadata: the baseline of the
workspace's own draw reuses what the workspace has built, and each row reuses its draw's baseline,
so a row reruns only the stages its change affects (a model row trains and evaluates; a
magnification row also recomputes magnify and features). Every row trains each fold with every seed
of ``--seeds``; ``--draws`` (``synth.seed`` values) repeats everything on other draws of the
embedded dataset.

Each row pools its predictions of all draws (each draw's subjects its own) and reports that
pool's scores per seed, their mean ± sd over seeds and the 95% subject-bootstrap interval of the
same mean (one statistic for all three), each draw's own scores, and its difference from the
baseline on the same clips with a paired subject-bootstrap interval: "not resolved" where that
interval contains 0.

    python workflow/scripts/ablation.py --seeds 0 1 --draws 0 1 --cores 2 --json benchmarks/results/ablation.json
    python workflow/scripts/ablation.py --row magnify.alpha=8 --row train.lr=0.003
    python workflow/scripts/ablation.py --base train.model=c3d --row train.models.c3d.se=true

``--base`` changes the baseline itself (an option of another model is then compared with that
model's defaults); such a baseline reuses the draw's plain baseline copy when one has been built.

The table goes to stdout and, with ``--output``, into a Markdown file; ``--json`` writes every
number (the file the README quotes, through :func:`readme_table`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from workspace import environment, project_files

from merec.evaluate.bootstrap import paired_difference, seed_scores, subject_bootstrap
from merec.runtime import software_versions

ROOT = Path(__file__).resolve().parents[2]
TARGET = "results/{dataset}/loso.csv"
DEFAULT_ROWS = (
    "interpolate.method=linear",
    "magnify.method=evm",
    "magnify.method=none",
    "train.model=stst",
    "train.model=offapex",
    "train.model=t3d",
    "train.model=c3d",
    "train.model=mdmo",
    "au_graph.graph=identity",
)
BOOTSTRAP_DRAWS = 2000
SHARED = ("data", "results", "models")  # hard-linked from the baseline copy (merec replaces, never edits, files)
COPIED = (".snakemake/metadata", ".snakemake/merec")  # rewritten in place: real copies (mtimes kept)


def parse_change(text: str) -> list[tuple[str, Any]]:
    """``section.key=value`` (YAML value); several changes in one row are separated by ``;``."""
    changes = []
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if not sep or not key:
            raise SystemExit(f"--row {text!r}: expected section.key=value[;section.key=value...]")
        changes.append((key, yaml.safe_load(value)))
    return changes


def set_param(params: dict[str, Any], dotted: str, value: Any) -> None:
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        if part not in node:
            raise SystemExit(f"params.yaml has no section {dotted.rsplit('.', 1)[0]!r}")
        node = node[part]
    node[last] = value


DVC_FILES = ("dvc.yaml", "dvc.lock")


def _link(source: str, target: str) -> None:
    Path(target).unlink(missing_ok=True)
    os.link(source, target)


def make_copy(source: Path, target: Path, params: dict[str, Any], shared_from: Path | None) -> None:
    """A working copy of the project at ``target`` with ``params``, sharing ``shared_from``'s artifacts."""
    if target.exists():
        shutil.rmtree(target)
    for name in project_files(source):
        if Path(name).name in DVC_FILES:
            continue  # Snakemake alone runs a copy: recording it in DVC would only hash every artifact again
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if (source / name).is_symlink():
            path.symlink_to(os.readlink(source / name))
        else:
            shutil.copy2(source / name, path)
    if shared_from is not None:
        for name in SHARED + COPIED:
            if (shared_from / name).exists():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                copier = _link if name in SHARED else shutil.copy2
                shutil.copytree(
                    shared_from / name, target / name, copy_function=copier, symlinks=True, dirs_exist_ok=True
                )
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def finished_copy(workdir: Path, params: dict[str, Any], dataset: str) -> bool:
    """Whether ``workdir`` is a working copy with these params whose run already finished."""
    params_file = workdir / "params.yaml"
    return (
        (workdir / "results" / dataset / "metrics.json").is_file()
        and params_file.is_file()
        and yaml.safe_load(params_file.read_text()) == params
    )


RUN_RECORD = "ablation-run.json"  # in each working copy: how long its run took


def run_minutes(workdir: Path, resumed: bool, minutes: float) -> float | None:
    """Minutes the copy's run took: this run's, or for a resumed copy the ones it recorded (None
    for a copy made before copies recorded them)."""
    record = workdir / RUN_RECORD
    if not resumed:
        record.write_text(json.dumps({"minutes": minutes}))
        return minutes
    return json.loads(record.read_text())["minutes"] if record.is_file() else None


def source_commit(root: Path) -> str | None:
    """The git commit the working copies were made from (``+dirty`` with uncommitted changes), if any."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def run_workflow(workdir: Path, target: str, cores: str) -> None:
    command = [sys.executable, "-m", "snakemake", "--cores", cores, target]
    with open(workdir / "ablation.log", "w") as log:
        result = subprocess.run(command, cwd=workdir, env=environment(workdir), stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        if "LockException" in (workdir / "ablation.log").read_text():
            raise SystemExit(
                f"{workdir}: an earlier run there was interrupted and left Snakemake's lock; if no other "
                f"ablation is using this folder, run `cd {workdir} && python -m snakemake --unlock --cores 1 "
                f"{target}` and resume"
            )
        raise SystemExit(f"{workdir.name}: snakemake failed; see {workdir / 'ablation.log'}")


def table(rows: list[dict[str, Any]], seeds: list[int], draws: list[int]) -> str:
    per_draw = len(draws) > 1
    lines = [
        f"| configuration | UF1 (mean ± sd over seeds {', '.join(map(str, seeds))}"
        + (f"; draws {', '.join(map(str, draws))} pooled" if per_draw else "")
        + ") | UF1 95% interval | UAR | "
        + ("UF1 per draw | " if per_draw else "")
        + "UF1 minus baseline (95% interval) | minutes |",
        "|---|---:|---:|---:|" + ("---:|" if per_draw else "") + "---:|---:|",
    ]
    for row in rows:
        low, high = row.get("uf1_ci95") or [float("nan")] * 2
        diff = row.get("versus_baseline")
        if diff is None:
            versus = "(baseline)"
        else:
            d = diff["uf1"]
            verdict = "" if d["resolved"] else ", not resolved"
            versus = f"{d['difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}{verdict})"
        draw_cells = " / ".join(f"{row['per_draw'][str(d)]['uf1']:.3f}" for d in draws) + " | " if per_draw else ""
        minutes = "-" if row["minutes"] is None else f"{row['minutes']:.1f}"
        lines.append(
            f"| {row['name']} | {row['uf1']:.3f} ± {row['uf1_sd']:.3f} | {low:.3f}-{high:.3f} | "
            f"{row['uar']:.3f} ± {row['uar_sd']:.3f} | {draw_cells}{versus} | {minutes} |"
        )
    return "\n".join(lines)


def readme_table(record: dict[str, Any]) -> str:
    """The README's results table from an ``--json`` record (the README quotes it; a test keeps them in step)."""
    draws = record.get("draws", [record.get("synth_seed")])
    per_draw = len(draws) > 1
    lines = [
        "| configuration | UF1 (mean ± sd over seeds) | UF1 95% interval | "
        + ("UF1 per draw (" + " / ".join(map(str, draws)) + ") | " if per_draw else "")
        + "UF1 minus default (95% interval) |",
        "|---|---:|---:|" + ("---:|" if per_draw else "") + "---:|",
    ]
    for row in record["rows"]:
        low, high = row["uf1_ci95"]
        versus = row["versus_baseline"]
        if versus is None:
            name, difference = "default", ""
        else:
            d = versus["uf1"]
            verdict = "" if d["resolved"] else ", not resolved"
            name = "`" + row["name"] + "`"
            difference = f"{d['difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}{verdict})"
        draw_cells = " / ".join(f"{row['per_draw'][str(d)]['uf1']:.3f}" for d in draws) + " | " if per_draw else ""
        lines.append(
            f"| {name} | {row['uf1']:.3f} ± {row['uf1_sd']:.3f} | {low:.3f}-{high:.3f} | {draw_cells}{difference} |"
        )
    return "\n".join(lines) + "\n\n" + verdicts(record)


def headline(record: dict[str, Any]) -> str:
    """The baseline row of an ``--json`` record as one sentence (the README's headline)."""
    row = record["rows"][0]
    draws = record["draws"]
    low, high = row["uf1_ci95"]
    per_draw = " / ".join(f"{row['per_draw'][str(d)]['uf1']:.3f}" for d in draws)
    return (
        f"UF1 **{row['uf1']:.3f} ± {row['uf1_sd']:.3f}** (95% interval {low:.3f}-{high:.3f}; per draw "
        f"{per_draw}), UAR {row['uar']:.3f} ± {row['uar_sd']:.3f}: the clips of draws "
        f"{', '.join(map(str, draws))} pooled, mean ± sd over training seeds {', '.join(map(str, record['seeds']))}"
    )


def verdicts(record: dict[str, Any]) -> str:
    """Which rows differ from the default by more than their paired interval, and which do not."""
    groups: dict[str, list[str]] = {"below": [], "above": [], "not resolved": []}
    for row in record["rows"][1:]:
        d = row["versus_baseline"]["uf1"]
        kind = "not resolved" if not d["resolved"] else "below" if d["difference"] < 0 else "above"
        groups[kind].append("`" + row["name"] + "`")
    parts = [
        f"{label}: {', '.join(names)}."
        for label, names in (
            ("Resolved below the default", groups["below"]),
            ("Resolved above the default", groups["above"]),
            ("Not resolved (the paired interval contains 0)", groups["not resolved"]),
        )
        if names
    ]
    return " ".join(parts)


def _predictions(workdir: Path, dataset: str) -> pd.DataFrame:
    return pd.read_csv(workdir / "results" / dataset / "predictions.csv", dtype={"sample": str, "subject": str})


def _classes(workdir: Path, dataset: str) -> list[str]:
    return json.loads((workdir / "data" / "interim" / dataset / "classes.json").read_text())["classes"]


def pooled_over_draws(by_draw: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Predictions of several data draws as one set: each draw's subjects and clips are its own."""
    frames = []
    for draw, predictions in sorted(by_draw.items()):
        frame = predictions.copy()
        frame["subject"] = f"draw{draw}/" + frame["subject"].astype(str)
        frame["sample"] = f"draw{draw}/" + frame["sample"].astype(str)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarise_row(name: str, runs: dict[int, dict[str, Any]], classes: list[str], baseline: dict | None) -> dict:
    """One configuration over its draws: per draw, pooled over the draws, and against the baseline.

    The point estimate, its sd and its interval are of one statistic: each seed's score of the
    predictions of every draw pooled (a draw's subjects are its own), then the mean over seeds
    (``uf1``), the sd over seeds (``uf1_sd``) and the subject bootstrap of that mean
    (``uf1_ci95``); with one draw these are the run's own metrics.json figures.
    """
    pooled = pooled_over_draws({draw: run["predictions"] for draw, run in runs.items()})
    minutes = [run["minutes"] for run in runs.values()]
    row: dict[str, Any] = {"name": name, "minutes": None if None in minutes else sum(minutes), "pooled": pooled}
    for key, values in seed_scores(pooled, classes).items():
        row[key] = float(np.mean(values))
        row[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    row |= subject_bootstrap(pooled, classes, BOOTSTRAP_DRAWS)
    row["statistic"] = "pooled over draws"
    row["per_draw"] = {
        str(draw): {
            "per_seed": run["metrics"].get("per_seed"),
            **{k: run["metrics"].get(k) for k in ("uf1", "uf1_sd", "uf1_ci95", "uar", "uar_sd", "uar_ci95")},
        }
        for draw, run in runs.items()
    }
    row["versus_baseline"] = (
        None if baseline is None else paired_difference(baseline["pooled"], pooled, classes, BOOTSTRAP_DRAWS)
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--draws", type=int, nargs="+", help="synth.seed values (data draws); default: params.yaml's")
    parser.add_argument(
        "--row", action="append", help="section.key=value[;section.key=value] changed from the baseline (repeatable)"
    )
    parser.add_argument("--base", help="section.key=value[;...] applied to params.yaml for the baseline and every row")
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--workdir", type=Path, default=ROOT / "ablation")
    parser.add_argument("--baseline-only", action="store_true", help="no rows: params.yaml's headline alone")
    parser.add_argument(
        "--resume", action="store_true", help="keep working copies whose run finished with the same params"
    )
    parser.add_argument("--output", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    args = parser.parse_args()
    base_params = yaml.safe_load((ROOT / "params.yaml").read_text())
    set_param(base_params, "train.seeds", args.seeds)
    base_params["train"].pop("seed", None)
    own_draw = base_params.get("synth", {}).get("seed", 0)
    draws = args.draws or [own_draw]
    target = TARGET.format(dataset=args.dataset)
    base_changes = parse_change(args.base) if args.base else []
    for key, value in base_changes:
        set_param(base_params, key, value)
    changes = [] if args.baseline_only else [parse_change(text) for text in args.row or DEFAULT_ROWS]
    base_name = "; ".join(["params.yaml"] + [f"{key}: {value}" for key, value in base_changes])
    names = [f"baseline ({base_name})"] + ["; ".join(f"{key}: {value}" for key, value in row) for row in changes]
    runs: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in names}
    total = len(draws) * len(names)
    commit = source_commit(ROOT)  # before the runs: the copies are made from this state
    for d, draw in enumerate(draws):
        draw_params = copy.deepcopy(base_params)
        draw_params.setdefault("synth", {})["seed"] = draw
        folder = args.workdir if len(draws) == 1 else args.workdir / f"draw{draw}"
        plain_copy = folder / "baseline"
        base_slug = "-".join(f"{key}={value}" for key, value in base_changes)
        baseline_copy = folder / f"base-{base_slug}" if base_changes else plain_copy
        for index, name in enumerate(names):
            params = copy.deepcopy(draw_params)  # key order kept: Snakemake compares params in order
            if index:
                for key, value in changes[index - 1]:
                    set_param(params, key, value)
            row_copy = f"{baseline_copy.name}-row{index}" if base_changes else f"row{index}"
            workdir = baseline_copy if index == 0 else folder / row_copy
            # the baseline reuses what the workspace already built for its own draw; rows reuse the baseline's
            built_here = draw == own_draw and (ROOT / ".snakemake/metadata").is_dir()
            if index:
                shared = baseline_copy
            elif base_changes and (plain_copy / ".snakemake/metadata").is_dir():
                shared = plain_copy
            else:
                shared = ROOT if built_here else None
            resumed = args.resume and finished_copy(workdir, params, args.dataset)
            if resumed:
                print(f"  {workdir}: finished with these params, kept as it is", file=sys.stderr)
            else:
                make_copy(ROOT, workdir, params, shared)
            started = time.perf_counter()
            print(f"[{d * len(names) + index + 1}/{total}] draw {draw}: {name} ...", file=sys.stderr, flush=True)
            run_workflow(workdir, target, args.cores)
            runs[name][draw] = {
                "metrics": json.loads((workdir / "results" / args.dataset / "metrics.json").read_text()),
                "predictions": _predictions(workdir, args.dataset),
                "minutes": run_minutes(workdir, resumed, (time.perf_counter() - started) / 60),
            }
    first = args.workdir if len(draws) == 1 else args.workdir / f"draw{draws[0]}"
    classes = _classes(first / baseline_copy.name, args.dataset)
    rows: list[dict[str, Any]] = []
    for name in names:
        rows.append(summarise_row(name, runs[name], classes, rows[0] if rows else None))
    text = table(rows, args.seeds, draws)
    print(text)
    if args.output:
        args.output.write_text(
            f"<!-- written by: python workflow/scripts/ablation.py --output {args.output} -->\n{text}\n"
        )
    if args.json:
        record = {
            "command": shlex.join(["python", "workflow/scripts/ablation.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"),
            "seeds": args.seeds,
            "draws": draws,
            "dataset": args.dataset,
            "bootstrap_draws": BOOTSTRAP_DRAWS,
            "base": args.base,
            "commit": commit,
            "environment": software_versions(),
            "baseline_params": {k: v for k, v in base_params.items() if k not in ("catalogue", "magnet_train")},
            "rows": [
                {
                    "name": row["name"],
                    "minutes": None if row["minutes"] is None else round(row["minutes"], 2),
                    **{k: row[k] for k in ("uf1", "uf1_sd", "uf1_ci95", "uar", "uar_sd", "uar_ci95", "statistic")},
                    "per_draw": row["per_draw"],
                    "versus_baseline": row["versus_baseline"],
                }
                for row in rows
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
