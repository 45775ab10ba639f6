"""Generate dvc.yaml from the Snakemake workflow, so the two front doors cannot drift.

Each Snakemake rule becomes one DVC stage with the same command, the same params sections, the
same code and data dependencies and the same outputs. Rules with a ``{dataset}`` wildcard become
``foreach: ${datasets}`` stages (one per dataset listed in params.yaml). The per-fold, per-seed
``train`` rule becomes one stage per dataset that trains every fold with every seed (``--fold all
--seed all``): DVC cannot fan out over data-dependent folds, and runs stages one after another anyway.

``magnet_train`` goes to its own pipeline file, ``models/dvc.yaml`` (run from the repository root):
a plain ``dvc repro`` reproduces the root dvc.yaml and so never trains MagNet unless
``magnify.magnet.checkpoint`` points to the stage's output (the magnify stage then depends on it).

    python workflow/scripts/generate_dvc_yaml.py            # rewrite dvc.yaml
    python workflow/scripts/generate_dvc_yaml.py --check    # exit 1 if dvc.yaml is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HEADER = "# GENERATED from the Snakefile by workflow/scripts/generate_dvc_yaml.py: do not edit by hand.\n"
# Input functions of the Snakefile and what they stand for in DVC's static world.
FUNCTION_INPUTS = {
    "raw_inputs": ["${item.root}"],
    "fold_dirs": ["results/${key}/folds"],
    "magnet_weights": ["${magnify.magnet.checkpoint}"],
}
# Rules whose stage lives in another pipeline file (path relative to the repository root).
SEPARATE_PIPELINES = {"magnet_train": "models/dvc.yaml"}
# Snakemake params names that are not a params.yaml section of the same name.
PARAM_KEYS = {"dataset": "datasets.${key}"}
METRICS = {"metrics"}
PLOTS = {
    "confusion_plot": {"template": "confusion", "x": "actual", "y": "predicted"},
    "confusion": {},
    "per_class": {"template": "bar_horizontal", "x": "f1", "y": "class"},
    "learning_curve_plot": {"x": "epoch", "y": "train_loss"},
    "learning_curve": {},
    "curve": {"x": "step", "y": "val_ssim"},
}


def _strip_constraints(pattern: str) -> str:
    return re.sub(r"\{(\w+),[^{}]*\}", r"{\1}", pattern)


def _to_dvc(pattern: str, output: bool = False) -> str:
    """Snakemake wildcards to DVC foreach variables.

    The fold and seed wildcards mean all of them: a per-run output becomes the folds folder, and
    other per-run paths (logs) name the fold and seed ``all``.
    """
    pattern = _strip_constraints(pattern)
    if output:
        pattern = re.sub(r"/seed-\{seed\}/\{fold\}$", "", pattern)
    pattern = pattern.replace("{fold}", "all").replace("{seed}", "all")
    return pattern.replace("{dataset}", "${key}").replace("{wildcards.dataset}", "${key}")


def _named(items: Any) -> dict[str | None, list[Any]]:
    """Items by name; unnamed ones under ``None``."""
    values = list(items)
    out: dict[str | None, list[Any]] = {}
    covered: set[int] = set()
    for name, (start, end) in dict(items._names).items():
        stop = end if end is not None else start + 1
        out[name] = values[start:stop]
        covered.update(range(start, stop))
    unnamed = [v for i, v in enumerate(values) if i not in covered]
    if unnamed:
        out[None] = unnamed
    return out


def _command(rule: Any) -> str:
    inputs = {k: [_to_dvc(str(v)) for v in vs] for k, vs in _named(rule.input).items() if not callable(vs[0])}
    outputs = {k: [_to_dvc(str(v), output=True) for v in vs] for k, vs in _named(rule.output).items()}
    plain_outputs = [_to_dvc(str(v), output=True) for v in rule.output]
    replacements = {
        "{output}": " ".join(plain_outputs),
        "{log}": " ".join(_to_dvc(str(v)) for v in rule.log),
        "{wildcards.dataset}": "${key}",
        "{wildcards.fold}": "all",
        "{wildcards.seed}": "all",
    }
    for name, values in inputs.items():
        replacements[f"{{input.{name}}}"] = " ".join(values)
    for name, values in outputs.items():
        replacements[f"{{output.{name}}}"] = " ".join(values)
    command = rule.shellcmd
    for key, value in replacements.items():
        command = command.replace(key, value)
    if "{" in command.replace("${key}", ""):
        raise SystemExit(f"rule {rule.name}: cannot translate shell command placeholders: {command}")
    return " ".join(command.split())


def _deps(rule: Any) -> list[str]:
    deps: list[str] = []
    for name, values in _named(rule.input).items():
        for value in values:
            if callable(value):
                deps.extend(FUNCTION_INPUTS[value.__name__])
            elif name != "code":
                deps.append(_to_dvc(str(value)))
    code = [str(v) for v in _named(rule.input).get("code", [])]
    return list(dict.fromkeys(deps + code))


def _outs(rule: Any) -> tuple[list[Any], list[Any], list[Any]]:
    outs: list[Any] = []
    metrics: list[Any] = []
    plots: list[Any] = []
    for name, values in _named(rule.output).items():
        for value in values:
            path = _to_dvc(str(value), output=True)
            if name in METRICS:
                metrics.append({path: {"cache": False}})
            elif name in PLOTS:
                plots.append({path: {"cache": False, **PLOTS[name]}})
            else:
                outs.append(path)
    return list(dict.fromkeys(outs)), metrics, plots


def stage_of(rule: Any) -> dict[str, Any]:
    """The DVC stage equivalent of one Snakemake rule."""
    outs, metrics, plots = _outs(rule)
    stage: dict[str, Any] = {"cmd": _command(rule), "deps": _deps(rule)}
    params = [PARAM_KEYS.get(name, name) for name in rule.params._names]
    if params:
        stage["params"] = params
    stage["outs"] = outs
    if metrics:
        stage["metrics"] = metrics
    if plots:
        stage["plots"] = plots
    per_dataset = any("{dataset" in str(o) for o in rule.output)
    return {"foreach": "${datasets}", "do": stage} if per_dataset else stage


def load_rules(root: Path = ROOT) -> list[Any]:
    """The rules of the Snakefile in ``root`` (parsed, not run)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, Quietness, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = api.workflow(ResourceSettings(), snakefile=root / "Snakefile", workdir=root)._workflow
        return [rule for rule in workflow.rules if rule.name != "all"]


def generate(root: Path = ROOT) -> dict[str, str]:
    """The text of each pipeline file (root dvc.yaml and the separate ones) for the workflow in ``root``."""
    files: dict[str, dict[str, Any]] = {"dvc.yaml": {}}
    for rule in load_rules(root):
        target = SEPARATE_PIPELINES.get(rule.name, "dvc.yaml")
        stage = stage_of(rule)
        if target != "dvc.yaml":
            depth = len(Path(target).parent.parts)
            stage = {"wdir": "/".join([".."] * depth), **stage}
        files.setdefault(target, {})[rule.name] = stage
    return {
        name: HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=120) for name, stages in files.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a dvc.yaml differs from the Snakefile")
    args = parser.parse_args()
    stale = []
    for name, text in generate(ROOT).items():
        target = ROOT / name
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target}")
    if stale:
        print(f"{', '.join(stale)} out of date with the Snakefile: run python workflow/scripts/generate_dvc_yaml.py")
        return 1
    if args.check:
        print("dvc.yaml files match the Snakefile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
