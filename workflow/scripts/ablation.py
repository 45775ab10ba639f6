"""Ablation table: what each stage contributes, UF1/UAR as mean ± sd over seeds.

Runs the Snakemake workflow once per configuration, each in its own working copy under
``ablation/<name>/`` (git-ignored): the baseline is ``params.yaml`` as it is, every other row changes
one value of it. Copies share the baseline's finished artifacts through hard links and Snakemake's
metadata, so a row reruns only the stages its change affects (a model row trains and evaluates; a
magnification row also recomputes magnify and features). Every row trains each fold with every
seed of ``--seeds``.

    python workflow/scripts/ablation.py                      # the default table, seeds 0 1 2
    python workflow/scripts/ablation.py --cores 8 --output docs/ablation.md
    python workflow/scripts/ablation.py --row magnify.alpha=8 --row train.lr=0.003

The table goes to stdout and, with ``--output``, into a Markdown file.
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

import yaml
from workspace import environment, project_files

ROOT = Path(__file__).resolve().parents[2]
TARGET = "results/{dataset}/loso.csv"
DEFAULT_ROWS = (
    "interpolate.method=linear",
    "magnify.method=evm",
    "magnify.method=none",
    "train.model=stst",
    "train.model=c3d",
)
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
        f"| configuration | UF1 (mean ± sd, seeds {', '.join(map(str, seeds))}) | UAR | minutes |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"| {row['name']} | {m['uf1']:.3f} ± {m.get('uf1_sd', 0.0):.3f} | "
            f"{m['uar']:.3f} ± {m.get('uar_sd', 0.0):.3f} | {row['minutes']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--row", action="append", help="section.key=value changed from the baseline (repeatable)")
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--workdir", type=Path, default=ROOT / "ablation")
    parser.add_argument("--output", type=Path, help="also write the table to this Markdown file")
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
        rows.append({"name": name, "metrics": metrics, "minutes": (time.perf_counter() - started) / 60})
        print(table(rows[-1:], args.seeds).splitlines()[-1], file=sys.stderr, flush=True)
    text = table(rows, args.seeds)
    print(text)
    if args.output:
        args.output.write_text(
            f"<!-- written by: python workflow/scripts/ablation.py --output {args.output} -->\n{text}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
