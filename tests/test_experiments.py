"""DVC experiments on the tiny configuration, in a temporary git repository holding a copy of the project.

Proves the loop documented in docs/experiments.md: ``dvc exp run -S`` reruns only what the change
affects; queued experiments run in DVC's temporary workspaces and give exactly what the same
change gives in the workspace; ``dvc exp show`` lists UF1, UAR and accuracy per experiment;
``dvc plots diff`` compares confusion matrices across experiments; a local remote restores every
result in a fresh clone without recomputing anything.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers.workflow import clone, dvc_ran, run

pytestmark = pytest.mark.slow
QUEUED = {"alpha6": "magnify.alpha=6", "lr2": "train.lr=0.002"}
QUEUE_TIMEOUT_S = 900


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(root, sys.executable, "-m", "dvc", *args, check=check)


def restore_baseline(root: Path) -> None:
    """Back to the committed baseline: params, lock and git-tracked metrics, then the cached outputs."""
    run(root, "git", "checkout", "--", ".")
    dvc(root, "checkout", "--force", "dvc.yaml")  # models/dvc.yaml (MagNet training) has never run here


def experiments(root: Path) -> dict[str, dict[str, str]]:
    """``dvc exp show`` rows by experiment name (baseline rows by their rev: workspace, master)."""
    shown = dvc(
        root, "exp", "show", "--csv", "--no-pager", "--drop", ".*",
        "--keep", r"Experiment|rev|State|uf1$|uar$|accuracy$|magnify\.alpha|train\.lr$",
    ).stdout  # fmt: skip
    return {row["Experiment"] or row["rev"]: row for row in csv.DictReader(io.StringIO(shown))}


def experiment_commit(root: Path, name: str) -> str:
    refs = run(root, "git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout
    commits = [sha for ref, sha in (line.split() for line in refs.splitlines()) if ref.endswith(f"/{name}")]
    assert len(commits) == 1, refs
    return commits[0]


def outs_hashes(lock_text: str) -> dict[str, str]:
    """Every output's content hash in a dvc.lock."""
    lock = yaml.safe_load(lock_text)
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def wait_for_queue(root: Path) -> str:
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while time.monotonic() < deadline:
        status = dvc(root, "queue", "status").stdout
        if not any(state in status for state in ("Queued", "Running")):
            return status
        time.sleep(3)
    dvc(root, "queue", "kill", *QUEUED, check=False)
    raise AssertionError(f"queued experiments still running after {QUEUE_TIMEOUT_S} s:\n{status}")


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def repo(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline built by Snakemake and committed: dvc.lock (recorded by the Snakemake run) and
    the git-tracked metrics and plots."""
    return clone(built, tmp_path_factory.mktemp("experiments"))


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def queued(repo: Path) -> str:
    """Two experiments queued, then run by one queue worker in DVC's temporary workspaces."""
    for name, change in QUEUED.items():
        dvc(repo, "exp", "run", "--queue", "-S", change, "-n", name)
    dvc(repo, "queue", "start", "-j", "1")
    return wait_for_queue(repo)


def test_metrics_and_plot_data_are_committed_with_the_pipeline(repo: Path) -> None:
    tracked = set(run(repo, "git", "ls-files", "results").stdout.split())
    assert {"results/synth/metrics.json", "results/synth/per_class.csv", "results/synth/plots/confusion.csv"} <= tracked
    assert "results/synth/loso.csv" not in tracked  # DVC-cached outputs stay out of git


def test_plots_show_the_confusion_matrix_per_class_f1_and_the_mean_learning_curve(repo: Path) -> None:
    shown = json.loads(dvc(repo, "plots", "show", "--json").stdout)["data"]
    assert {"results/synth/per_class.csv", "results/synth/plots/confusion.csv"} <= set(shown)
    (curve,) = shown["results/synth/plots/learning_curve.csv"]
    points = curve["content"]["data"]["values"]
    assert [int(point["epoch"]) for point in points] == [1, 2]  # one point per epoch: the mean over folds


# a train value: the LOSO folds, the model on every subject, the long videos' recogniser and what reads them
TRAIN_CHANGE = {"train", "train_all", "evaluate", "train_spotted", "spot_strs"}


def test_exp_run_reruns_only_what_the_change_affects(repo: Path) -> None:
    try:
        output = dvc(repo, "exp", "run", "-S", "train.lr=0.003", "-n", "lr3").stdout
        assert dvc_ran(output) == TRAIN_CHANGE
        row = experiments(repo)["lr3"]
        assert row["train.lr"] == "0.003"
        assert all(float(row[key]) >= 0 for key in ("uf1", "uar", "accuracy"))
    finally:
        restore_baseline(repo)


def test_queued_experiments_succeed_and_show_their_metrics(repo: Path, queued: str) -> None:
    rows = experiments(repo)
    for name in QUEUED:
        assert rows[name]["State"] == "Success", queued
        assert all(rows[name][key] not in ("", "-", "!") for key in ("uf1", "uar", "accuracy")), rows[name]
    assert rows["alpha6"]["magnify.alpha"] == "6" and rows["lr2"]["train.lr"] == "0.002"


def test_queued_experiments_rerun_only_the_affected_stages(repo: Path, queued: str) -> None:
    assert dvc_ran(dvc(repo, "queue", "logs", "alpha6").stdout) == {
        "magnify", "features", "strips", "magnify_spotted", "features_spotted", *TRAIN_CHANGE,
    }  # fmt: skip
    assert dvc_ran(dvc(repo, "queue", "logs", "lr2").stdout) == TRAIN_CHANGE


def test_a_queued_experiment_equals_the_same_change_run_in_the_workspace(repo: Path, queued: str) -> None:
    queued_lock = run(repo, "git", "show", f"{experiment_commit(repo, 'alpha6')}:dvc.lock").stdout
    queued_metrics = run(repo, "git", "show", f"{experiment_commit(repo, 'alpha6')}:results/synth/metrics.json").stdout
    try:
        dvc(repo, "exp", "run", "-S", "magnify.alpha=6", "-n", "alpha6-here")
        assert outs_hashes((repo / "dvc.lock").read_text()) == outs_hashes(queued_lock)
        assert json.loads((repo / "results/synth/metrics.json").read_text()) == json.loads(queued_metrics)
    finally:
        restore_baseline(repo)


def test_a_queued_experiment_runs_the_code_it_was_queued_with(repo: Path) -> None:
    """Stages run ``python -m merec`` in the experiment's workspace: its merec, not the installed one."""
    code = repo / "merec/evaluate/__init__.py"
    original = code.read_text()
    code.write_text(original + '\nprint("evaluate code as queued", file=__import__("sys").stderr)\n')
    try:
        dvc(repo, "exp", "run", "--queue", "-n", "edited")
    finally:
        code.write_text(original)  # the workspace moves on before the queue runs
    dvc(repo, "queue", "start", "-j", "1")
    wait_for_queue(repo)
    logs = dvc(repo, "queue", "logs", "edited").stdout
    assert dvc_ran(logs) == {"evaluate"} and "evaluate code as queued" in logs


def test_plots_diff_compares_confusion_matrices_across_experiments(repo: Path, queued: str, tmp_path: Path) -> None:
    target = "results/synth/plots/confusion.csv"
    shown = json.loads(dvc(repo, "plots", "diff", "HEAD", *QUEUED, "--targets", target, "--json").stdout)
    (plot,) = shown["data"][target]
    assert set(plot["revisions"]) == {"HEAD", *QUEUED}
    cells = plot["content"]["data"]["values"]
    assert {cell["rev"] for cell in cells} == {"HEAD", *QUEUED}
    assert {"actual", "predicted"} <= set(cells[0])
    dvc(repo, "plots", "diff", "HEAD", *QUEUED, "--targets", target, "-o", str(tmp_path / "plots"))
    assert "vega" in (tmp_path / "plots/index.html").read_text()


def test_a_local_remote_restores_every_result_in_a_fresh_clone_without_recomputing(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "--local", "-d", "store", str(remote))
    dvc(repo, "push")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "results/synth/loso.csv").exists()
    dvc(clone, "remote", "add", "--local", "-d", "store", str(remote))
    dvc(clone, "config", "--local", "core.site_cache_dir", str(tmp_path / "dvc-site"))
    dvc(clone, "pull", "dvc.yaml")
    assert "up to date" in dvc(clone, "status", "dvc.yaml").stdout
    assert dvc_ran(dvc(clone, "repro").stdout) == set()
    for name in ("results/synth/loso.csv", "results/synth/predictions.csv", "results/synth/metrics.json"):
        assert (clone / name).read_bytes() == (repo / name).read_bytes(), name
    assert any((clone / "results/synth/folds").rglob("*.pt"))
