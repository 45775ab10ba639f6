"""Running the workflow in a temporary copy of the project, on the tiny configuration.

:func:`make_copy` writes the project's files (as a commit holds them) into a new git repository,
with :data:`TINY_PARAMS` applied to params.yaml; :func:`snakemake`, :func:`dvc` and :func:`run`
run commands there with the copy's own ``merec`` package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO
from tests.helpers.tiny import TINY_PARAMS

sys.path.insert(0, str(REPO / "workflow" / "scripts"))
from workspace import copy_project, environment

TARGET = "results/synth/loso.csv"
SPOT_TARGET = "results/synth_lv/spotting/strs.json"  # spotting, then recognition: not in rule all, built beside it
MODEL_TARGET = "results/synth/model"  # train_all, the recogniser on every subject: not in rule all, built beside it
SPOTTER_TARGET = "results/synth_lv/spotting/spotter"  # spot_train, the learned spotter on every video: likewise
STAGES = ("synth", "ingest", "face", "interpolate", "magnify", "features", "au_graph", "train", "evaluate", "strips")


def run(root: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``command`` in ``root`` (its merec first on the path); an error with the output tails when it fails."""
    result = subprocess.run(command, cwd=root, env=environment(root), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def set_param(root: Path, dotted: str, value: object) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def get_param(root: Path, dotted: str) -> object:
    node = yaml.safe_load((root / "params.yaml").read_text())
    for part in dotted.split("."):
        node = node[part]
    return node


def make_copy(tmp: Path, params: dict[str, dict[str, Any]] | None = None) -> Path:
    """A git repository at ``tmp/repo`` holding the project with the tiny params (or ``params``)."""
    root = tmp / "repo"
    copy_project(REPO, root)  # dvc.lock as committed: a run in the checkout (./quickstart.sh) rewrote its own
    for section, values in (TINY_PARAMS if params is None else params).items():
        for key, value in values.items():
            set_param(root, f"{section}.{key}", value)
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny")
    dvc(root, "config", "--local", "core.site_cache_dir", str(tmp / "dvc-site"))
    return root


def snakemake(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(root, sys.executable, "-m", "snakemake", "--cores", "2", *args, check=check)


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(root, sys.executable, "-m", "dvc", *args, check=check)


def planned_rules(root: Path, *targets: str) -> set[str]:
    """Rules a dry run would execute (Snakemake's job-stats table)."""
    output = snakemake(root, "-n", *(targets or (TARGET,))).stdout
    if "Nothing to be done" in output:
        return set()
    table = output.split("Job stats:")[-1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}


def dvc_ran(output: str) -> set[str]:
    """Stages (without their @ parts) a `dvc repro` output says it ran."""
    return {m.group(1).split("@")[0] for m in re.finditer(r"Running stage '([^']+)'", output)}


def clone(source: Path, tmp: Path) -> Path:
    """A copy of a built project (files, git, DVC cache and Snakemake's records; modification times kept)."""
    root = tmp / "repo"
    shutil.copytree(source, root, symlinks=True)
    return root


def build(tmp: Path) -> Path:
    """The tiny project built by Snakemake (rule all, the spotting and the model targets) and committed: the baseline
    the workflow tests share."""
    root = make_copy(tmp)
    result = snakemake(root, "--printshellcmds", "all", SPOT_TARGET, MODEL_TARGET, SPOTTER_TARGET)
    (root / "first-run.log").write_text(result.stdout + result.stderr)
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    return root
