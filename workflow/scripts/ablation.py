"""Ablation table: what each stage contributes, UF1/UAR as mean ± sd over seeds, with intervals.

Runs the Snakemake workflow once per configuration, each in its own working copy under
``ablation/<name>/`` (git-ignored): the baseline is ``params.yaml`` as it is, every other row changes
one value of it. Copies share the baseline's finished artifacts through hard links and Snakemake's
metadata, so a row reruns only the stages its change affects (a model row trains and evaluates; a
magnification row also recomputes magnify and features). Every row trains each fold with every
seed of ``--seeds``.

Each row reports its per-seed pooled scores, their mean ± sd, the 95% subject-bootstrap interval
of the mean (from its ``metrics.json``), and its difference from the baseline on the same clips
with a paired subject-bootstrap interval: "not resolved" where that interval contains 0.

    python workflow/scripts/ablation.py                      # the default table, seeds 0 1 2
    python workflow/scripts/ablation.py --cores 8 --output docs/ablation.md --json ablation.json
    python workflow/scripts/ablation.py --row magnify.alpha=8 --row train.lr=0.003

The table goes to stdout and, with ``--output``, into a Markdown file; ``--json`` writes every
number (the file the README quotes).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from workspace import environment, project_files

from merec.evaluate.bootstrap import paired_difference

ROOT = Path(__file__).resolve().parents[2]
TARGET = "results/{dataset}/loso.csv"
DEFAULT_ROWS = (
    "interpolate.method=linear",
    "magnify.method=evm",
    "magnify.method=none",
    "train.model=stst",
    "train.model=c3d",
    "train.model=mdmo",
    "au_graph.graph=identity",
)
BOOTSTRAP_DRAWS = 2000
SHARED = ("data", "results", "models")  # hard-linked from the baseline copy (merec replaces, never edits, files)
COPIED = (".snakemake/metadata", ".snakemake/merec")  # rewritten in place: real copies (mtimes kept)


def parse_change(text: str) -> tuple[str, Any]:
    """``section.key=value`` with a YAML value."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--row {text!r}: expected section.key=value")
    return key, yaml.safe_load(value)


def set_param(params: dict[str, Any], dotted: str, value: Any) -> None:
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        if part not in node:
            raise SystemExit(f"params.yaml has no section {dotted.rsplit('.', 1)[0]!r}")
        node = node[part]
    node[last] = value


def _link(source: str, target: str) -> None:
    Path(target).unlink(missing_ok=True)
    os.link(source, target)


def make_copy(source: Path, target: Path, params: dict[str, Any], shared_from: Path | None) -> None:
    """A working copy of the project at ``target`` with ``params``, sharing ``shared_from``'s artifacts."""
    if target.exists():
        shutil.rmtree(target)
    for name in project_files(source):
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


def run_workflow(workdir: Path, target: str, cores: str) -> None:
    command = [sys.executable, "-m", "snakemake", "--cores", cores, target]
    with open(workdir / "ablation.log", "w") as log:
        result = subprocess.run(command, cwd=workdir, env=environment(workdir), stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{workdir.name}: snakemake failed; see {workdir / 'ablation.log'}")


def table(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    lines = [
        f"| configuration | UF1 (mean ± sd, seeds {', '.join(map(str, seeds))}) | UF1 95% interval | UAR | "
        "UF1 minus baseline (95% interval) | minutes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        m = row["metrics"]
        low, high = m.get("uf1_ci95", [float("nan")] * 2)
        diff = row.get("versus_baseline")
        if diff is None:
            versus = "(baseline)"
        else:
            d = diff["uf1"]
            verdict = "" if d["resolved"] else ", not resolved"
            versus = f"{d['difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}{verdict})"
        lines.append(
            f"| {row['name']} | {m['uf1']:.3f} ± {m.get('uf1_sd', 0.0):.3f} | {low:.3f}-{high:.3f} | "
            f"{m['uar']:.3f} ± {m.get('uar_sd', 0.0):.3f} | {versus} | {row['minutes']:.1f} |"
        )
    return "\n".join(lines)


def _predictions(workdir: Path, dataset: str) -> pd.DataFrame:
    return pd.read_csv(workdir / "results" / dataset / "predictions.csv", dtype={"sample": str, "subject": str})


def _classes(workdir: Path, dataset: str) -> list[str]:
    return json.loads((workdir / "data" / "interim" / dataset / "classes.json").read_text())["classes"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--row", action="append", help="section.key=value changed from the baseline (repeatable)")
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--workdir", type=Path, default=ROOT / "ablation")
    parser.add_argument("--output", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    args = parser.parse_args()
    base_params = yaml.safe_load((ROOT / "params.yaml").read_text())
    set_param(base_params, "train.seeds", args.seeds)
    base_params["train"].pop("seed", None)
    target = TARGET.format(dataset=args.dataset)
    configurations = [("baseline (params.yaml)", base_params)]
    for text in args.row or DEFAULT_ROWS:
        key, value = parse_change(text)
        params = copy.deepcopy(base_params)  # key order kept: Snakemake compares params in order
        set_param(params, key, value)
        configurations.append((f"{key}: {value}", params))
    rows = []
    baseline_copy = args.workdir / "baseline"
    for index, (name, params) in enumerate(configurations):
        workdir = baseline_copy if index == 0 else args.workdir / f"row{index}"
        make_copy(ROOT, workdir, params, None if index == 0 else baseline_copy)
        started = time.perf_counter()
        print(f"[{index + 1}/{len(configurations)}] {name} ...", file=sys.stderr, flush=True)
        run_workflow(workdir, target, args.cores)
        metrics = json.loads((workdir / "results" / args.dataset / "metrics.json").read_text())
        row: dict[str, Any] = {"name": name, "metrics": metrics, "minutes": (time.perf_counter() - started) / 60}
        if index:
            classes = _classes(baseline_copy, args.dataset)
            row["versus_baseline"] = paired_difference(
                _predictions(baseline_copy, args.dataset), _predictions(workdir, args.dataset), classes, BOOTSTRAP_DRAWS
            )
        rows.append(row)
        print(table(rows[-1:], args.seeds).splitlines()[-1], file=sys.stderr, flush=True)
    text = table(rows, args.seeds)
    print(text)
    if args.output:
        args.output.write_text(
            f"<!-- written by: python workflow/scripts/ablation.py --output {args.output} -->\n{text}\n"
        )
    if args.json:
        record = {
            "command": " ".join(["python", "workflow/scripts/ablation.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"),
            "seeds": args.seeds,
            "dataset": args.dataset,
            "synth_seed": base_params.get("synth", {}).get("seed"),
            "bootstrap_draws": BOOTSTRAP_DRAWS,
            "rows": [
                {
                    "name": row["name"],
                    "minutes": round(row["minutes"], 2),
                    "per_seed": row["metrics"].get("per_seed"),
                    **{k: row["metrics"].get(k) for k in ("uf1", "uf1_sd", "uf1_ci95", "uar", "uar_sd", "uar_ci95")},
                    "versus_baseline": row.get("versus_baseline"),
                }
                for row in rows
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
