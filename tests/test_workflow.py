"""Snakemake and DVC on a tiny configuration, each in its own temporary copy of the repository.

Proves: a full build, a no-op second run, param and code changes rerunning exactly the affected
stages in both tools, dvc.yaml generated from the Snakefile, both tools running the same commands
and reaching the same metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from tests.helpers.tiny import TINY_SYNTH

TINY_PARAMS = {
    "synth": TINY_SYNTH,
    "interpolate": {"frames": 5},
    "features": {"flow": "farneback"},
    "train": {"epochs": 2},
    "magnet_train": {"steps": 3, "batch_size": 2, "crop": 32, "val_pairs": 2, "val_every": 3, "log_every": 1},
}
TRAINED_MAGNET = "models/magnet/magnet.pt"
PARAM_CHANGES = {
    "magnify.alpha": (6.0, {"magnify", "features", "train", "evaluate"}),
    "train.lr": (0.003, {"train", "evaluate"}),
    "train.seeds": ([0, 1], {"train", "evaluate"}),
    "train.model": ("stst", {"train", "evaluate"}),
    "interpolate.frames": (6, {"interpolate", "magnify", "features", "train", "evaluate"}),
    "interpolate.method": ("linear", {"interpolate", "magnify", "features", "train", "evaluate"}),
    "magnify.method": ("evm", {"magnify", "features", "train", "evaluate"}),
}
TARGET = "results/synth/loso.csv"


def project_files() -> list[str]:
    """Tracked files plus untracked, not-ignored ones (what a commit of the work tree would hold)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    # results/ holds git-tracked metrics of the checkout's own runs: never part of a fresh copy
    return [f for f in listed if f and (REPO / f).is_file() and not f.startswith("results/")]


def environment(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(root)  # the copy's merec, so code edits in the copy take effect
    env.update(MEREC_NO_PROGRESS="1", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")  # fmt: skip
    return env


def run(root: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
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
        node = node[part]
    node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def get_param(root: Path, dotted: str) -> object:
    node = yaml.safe_load((root / "params.yaml").read_text())
    for part in dotted.split("."):
        node = node[part]
    return node


def make_copy(tmp: Path) -> Path:
    root = tmp / "repo"
    for name in project_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    (root / "workflow/schemas/params.schema.yaml").unlink(missing_ok=True)
    (root / "workflow/schemas/params.schema.yaml").symlink_to("../../merec/schemas/params.schema.yaml")
    for dotted_section, values in TINY_PARAMS.items():
        for key, value in values.items():
            set_param(root, f"{dotted_section}.{key}", value)
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "tiny")
    run(root, sys.executable, "-m", "dvc", "config", "--local", "core.site_cache_dir", str(tmp / "dvc-site"))
    return root


def snakemake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(root, sys.executable, "-m", "snakemake", "--cores", "2", *args)


def planned_rules(root: Path) -> set[str]:
    """Rules a dry run would execute, from Snakemake's job-stats table."""
    output = snakemake(root, "-n", TARGET).stdout
    if "Nothing to be done" in output:
        return set()
    table = output.split("Job stats:")[-1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}


def dvc_ran(output: str) -> set[str]:
    return {m.group(1).split("@")[0] for m in re.finditer(r"Running stage '([^']+)'", output)}


@pytest.fixture(scope="module")
def snake_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_copy(tmp_path_factory.mktemp("snakemake"))
    result = snakemake(root, "--printshellcmds", TARGET, "results/synth/strips")
    (root / "first-run.log").write_text(result.stdout + result.stderr)
    return root


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = make_copy(tmp_path_factory.mktemp("dvc"))
    output = run(root, sys.executable, "-m", "dvc", "repro").stdout
    return root, output


def test_dvc_yaml_is_generated_from_the_snakefile() -> None:
    result = subprocess.run(
        [sys.executable, "workflow/scripts/generate_dvc_yaml.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_params_name_the_key(tmp_path: Path) -> None:
    root = minimal_workflow(tmp_path)
    set_param(root, "magnify.alpah", 3)
    result = run(root, sys.executable, "-m", "snakemake", "-n", check=False)
    assert result.returncode != 0
    assert "magnify: unknown key(s) alpah" in result.stdout + result.stderr


def minimal_workflow(tmp_path: Path) -> Path:
    """The Snakefile, its rules and params.yaml: enough to parse the workflow."""
    root = tmp_path / "repo"
    for name in (
        "Snakefile",
        "params.yaml",
        *(str(p.relative_to(REPO)) for p in (REPO / "workflow/rules").glob("*.smk")),
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text((REPO / name).read_text())
    return root


@pytest.mark.parametrize(("device", "gpus"), [("cuda", 1), ("auto", None), ("cpu", None)])
def test_fold_jobs_request_a_gpu_only_when_params_ask_for_one(tmp_path: Path, device: str, gpus: int | None) -> None:
    root = minimal_workflow(tmp_path)
    set_param(root, "train.device", device)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from generate_dvc_yaml import load_rules; "
        "rule = next(r for r in load_rules(Path(sys.argv[2])) if r.name == 'train'); "
        "gpu = rule.resources.get('gpu'); print(getattr(gpu, 'value', gpu))"
    )
    result = run(root, sys.executable, "-c", script, str(REPO / "workflow/scripts"), str(root))
    assert result.stdout.strip().splitlines()[-1] == str(gpus)


@pytest.mark.slow
def test_snakemake_builds_everything_then_has_nothing_to_do(snake_repo: Path) -> None:
    loso = (snake_repo / "results/synth/loso.csv").read_text().splitlines()
    assert loso[0].startswith("fold,") and loso[-1].startswith("pooled,")
    metrics = json.loads((snake_repo / "results/synth/metrics.json").read_text())
    assert metrics["n_folds"] == 3 and metrics["n_samples"] == 9
    assert planned_rules(snake_repo) == set()


@pytest.mark.slow
@pytest.mark.parametrize("dotted", list(PARAM_CHANGES))
def test_snakemake_param_change_reruns_exactly_the_affected_stages(snake_repo: Path, dotted: str) -> None:
    value, expected = PARAM_CHANGES[dotted]
    original = get_param(snake_repo, dotted)
    set_param(snake_repo, dotted, value)
    try:
        assert planned_rules(snake_repo) == expected
    finally:
        set_param(snake_repo, dotted, original)
    assert planned_rules(snake_repo) == set()


@pytest.mark.slow
def test_snakemake_trains_magnet_only_when_the_pipeline_uses_its_checkpoint(snake_repo: Path) -> None:
    assert "magnet_train" not in (snake_repo / "first-run.log").read_text()
    set_param(snake_repo, "magnify.magnet.checkpoint", TRAINED_MAGNET)
    try:
        assert planned_rules(snake_repo) == {"magnet_train", "magnify", "features", "train", "evaluate"}
        snakemake(snake_repo, TRAINED_MAGNET)
        assert planned_rules(snake_repo) == {"magnify", "features", "train", "evaluate"}
        set_param(snake_repo, "magnet_train.lr", 0.001)  # a training param reruns training, then the rest
        assert planned_rules(snake_repo) == {"magnet_train", "magnify", "features", "train", "evaluate"}
    finally:
        set_param(snake_repo, "magnify.magnet.checkpoint", "merec/weights/magnet.pt")
        set_param(snake_repo, "magnet_train.lr", 0.0003)
    assert planned_rules(snake_repo) == set()


@pytest.mark.slow
def test_snakemake_code_change_reruns_the_stage_and_what_follows(snake_repo: Path) -> None:
    code = snake_repo / "merec/features.py"
    code.write_text(code.read_text() + "\n# edited\n")
    assert planned_rules(snake_repo) == {"features", "train", "evaluate"}


@pytest.mark.slow
def test_dvc_repro_builds_everything_then_runs_nothing(dvc_repo: tuple[Path, str]) -> None:
    root, first = dvc_repo
    assert dvc_ran(first) == {
        "synth",
        "ingest",
        "face",
        "interpolate",
        "magnify",
        "features",
        "au_graph",
        "train",
        "evaluate",
        "strips",
    }
    second = run(root, sys.executable, "-m", "dvc", "repro").stdout
    assert dvc_ran(second) == set() and "up to date" in second


@pytest.mark.slow
def test_both_tools_reach_the_same_metrics(snake_repo: Path, dvc_repo: tuple[Path, str]) -> None:
    snake_metrics = json.loads((snake_repo / "results/synth/metrics.json").read_text())
    dvc_metrics = json.loads((dvc_repo[0] / "results/synth/metrics.json").read_text())
    assert snake_metrics == dvc_metrics


@pytest.mark.slow
def test_both_tools_run_the_same_commands(snake_repo: Path, dvc_repo: tuple[Path, str]) -> None:
    snake = (snake_repo / "first-run.log").read_text()
    snake_commands = {
        re.sub(
            r"--(fold|seed) \S+",
            r"--\1 all",
            re.sub(r"/train/[^/ ]+\.log", "/train/all.seed-all.log", line.split(":", 1)[1].strip()),
        )
        for line in snake.splitlines()
        if line.startswith("Shell command: python -m merec ")
    }
    dvc = run(dvc_repo[0], sys.executable, "-m", "dvc", "repro", "--dry", "--force").stdout
    dvc_commands = {line[2:].strip() for line in dvc.splitlines() if line.startswith("> python -m merec ")}
    assert snake_commands and snake_commands == dvc_commands


@pytest.mark.slow
@pytest.mark.parametrize("dotted", ["magnify.alpha", "train.lr"])
def test_dvc_param_change_reruns_exactly_the_affected_stages(dvc_repo: tuple[Path, str], dotted: str) -> None:
    root, _ = dvc_repo
    value, expected = PARAM_CHANGES[dotted]
    expected = expected | ({"strips"} if "magnify" in expected else set())  # dvc repro also redraws the strips
    set_param(root, dotted, value)
    assert dvc_ran(run(root, sys.executable, "-m", "dvc", "repro").stdout) == expected


@pytest.mark.slow
def test_dvc_code_change_reruns_the_stage_and_what_follows(dvc_repo: tuple[Path, str]) -> None:
    root, _ = dvc_repo
    code = root / "merec/features.py"
    # a behaviour change: features scaled by 2, so every later output changes too
    code.write_text(
        code.read_text()
        + "\n\n_unscaled = sample_features\n\n\ndef sample_features(*args, **kwargs):\n"
        + "    out = _unscaled(*args, **kwargs)\n    return out | {'face': out['face'] * 2}\n"
    )
    assert dvc_ran(run(root, sys.executable, "-m", "dvc", "repro").stdout) == {"features", "train", "evaluate"}


@pytest.mark.slow
def test_dvc_trains_magnet_only_when_the_pipeline_uses_its_checkpoint(dvc_repo: tuple[Path, str]) -> None:
    root, first = dvc_repo
    assert "magnet_train" not in first
    set_param(root, "magnify.magnet.checkpoint", TRAINED_MAGNET)
    ran = dvc_ran(run(root, sys.executable, "-m", "dvc", "repro").stdout)
    assert ran == {"models/dvc.yaml:magnet_train", "magnify", "features", "train", "evaluate", "strips"}
    assert (root / "models/magnet/curve.csv").exists()
    set_param(root, "magnet_train.lr", 0.001)
    ran = dvc_ran(run(root, sys.executable, "-m", "dvc", "repro").stdout)
    assert ran == {"models/dvc.yaml:magnet_train", "magnify", "features", "train", "evaluate", "strips"}
