"""Interruption and determinism of the whole pipeline (Snakemake on the tiny configuration).

* A reference copy of the repository runs the pipeline uninterrupted.
* A second copy starts from the reference's files up to ``interpolate`` and is killed with SIGKILL
  (the whole process group, as a crash or ``kill -9`` would) twice: in the middle of ``magnify`` or
  ``features`` (some clips written, others not) and in the middle of the training folds (some
  folds done, others not).
  After each kill no output of the interrupted stage exists (only a hidden ``.part`` temporary),
  and Snakemake's recovery (``--unlock``, then the same command with ``--rerun-incomplete``)
  completes. The results are identical to the reference's, and no temporary is left.
* A third copy reruns everything from the features on with the same params and seed: identical
  metrics, predictions, features and model weights.

The reference is the built project the workflow tests share; about 2 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.workflow import TARGET, environment, planned_rules, snakemake

pytestmark = pytest.mark.slow

RESULTS = "results/synth"
SAMPLE_STAGES = ("data/interim/synth", "data/processed/synth")


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def reference(built: Path) -> Path:
    return built


def copy_from(reference: Path, target: Path, *remove: str) -> Path:
    """A copy of the reference run (timestamps kept, so Snakemake sees it as up to date) minus ``remove``."""
    shutil.copytree(reference, target, symlinks=True)
    for relative in remove:
        shutil.rmtree(target / relative)
    return target


def kill_when(root: Path, condition: Callable[[], str | None], log: Path, timeout: float = 300) -> str:
    """Run the pipeline in its own process group; SIGKILL the whole group once ``condition()`` says why."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", TARGET],
            cwd=root,
            env=environment(root),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while process.poll() is None and time.monotonic() < deadline:
                reason = condition()
                if reason:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return reason
                time.sleep(0.01)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    raise AssertionError(f"the run ended before the kill point (exit {process.returncode}):\n{log.read_text()[-3000:]}")


def hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def mid_sample_stage(root: Path) -> Callable[[], str | None]:
    """True once a per-sample stage has written some clips into its temporary directory."""

    def condition() -> str | None:
        for parent in SAMPLE_STAGES:
            for part in (root / parent).glob("*/.*.part"):
                written = list(part.glob("*.npz"))
                if written:
                    return f"{part.relative_to(root)} holds {len(written)} clip(s)"
        return None

    return condition


def finished_folds(root: Path) -> list[Path]:
    folds = root / RESULTS / "folds"
    return [p for p in folds.rglob("predictions.csv") if not hidden(p, root)] if folds.is_dir() else []


def mid_training(root: Path, n_folds: int) -> Callable[[], str | None]:
    """True once some, but not all, LOSO folds are written."""

    def condition() -> str | None:
        done = len(finished_folds(root))
        return f"{done} of {n_folds} folds written" if 0 < done < n_folds else None

    return condition


def recover(root: Path) -> None:
    """What the README says to do after a killed run."""
    snakemake(root, "--unlock", TARGET)
    snakemake(root, "--rerun-incomplete", TARGET)


def leftovers(root: Path) -> list[str]:
    found = []
    for top in ("data", "results"):
        found += [str(p.relative_to(root)) for p in (root / top).rglob("*") if p.name.endswith((".part", ".old"))]
    return found


def assert_same_results(reference: Path, other: Path) -> None:
    """Metrics, predictions, reports, every feature archive and every fold's weights are identical."""
    for name in ("metrics.json", "loso.csv", "per_class.csv", "predictions.csv", "plots/confusion.csv"):
        assert (reference / RESULTS / name).read_bytes() == (other / RESULTS / name).read_bytes(), name
    features = sorted((reference / "data/processed/synth/features").glob("*/*.npz"))
    assert features
    for file in features:
        with np.load(file) as a, np.load(other / file.relative_to(reference)) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files), file.name
    models = sorted((reference / RESULTS / "folds").rglob("model.pt"))
    assert models
    for file in models:
        a = torch.load(file, weights_only=True)
        b = torch.load(other / file.relative_to(reference), weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), file


def test_killed_twice_then_rerun_gives_the_uninterrupted_results(reference: Path, tmp_path: Path) -> None:
    root = copy_from(
        reference,
        tmp_path / "repo",
        "data/interim/synth/magnify",
        "data/processed/synth/features",
        RESULTS,
    )
    n_folds = len(finished_folds(reference))
    assert n_folds >= 2

    # 1. SIGKILL in the middle of magnify (or features): its output does not exist, only a hidden temporary
    why = kill_when(root, mid_sample_stage(root), tmp_path / "kill-1.log")
    part = root / why.split(" holds ")[0]
    stage, shard = part.parent.name, part.name.split(".")[1]
    assert stage in ("magnify", "features"), why
    assert part.is_dir() and not (part.parent / shard).exists() and not (part.parent / f"{shard}.json").exists(), why
    snakemake(root, "--unlock", TARGET)
    assert {stage, "train", "evaluate"} <= planned_rules(root)

    # 2. SIGKILL while the LOSO folds train: finished folds are complete, the others absent
    why = kill_when(root, mid_training(root, n_folds), tmp_path / "kill-2.log")
    assert (root / "data/interim/synth/magnify").is_dir()
    for predictions in finished_folds(root):
        fold = predictions.parent
        assert {"model.pt", "fold.json", "history.csv"} <= {p.name for p in fold.iterdir()}, why
    assert not (root / RESULTS / "metrics.json").exists()

    # 3. recovery completes with the uninterrupted run's results and cleans the temporaries up
    recover(root)
    assert planned_rules(root) == set()
    assert_same_results(reference, root)
    assert leftovers(root) == []


def test_same_params_and_seed_give_identical_results_run_twice(reference: Path, tmp_path: Path) -> None:
    root = copy_from(reference, tmp_path / "repo")
    snakemake(root, "--forcerun", "features", TARGET)
    assert (root / RESULTS / "metrics.json").stat().st_mtime > (reference / RESULTS / "metrics.json").stat().st_mtime
    assert_same_results(reference, root)
    metrics = json.loads((root / RESULTS / "metrics.json").read_text())
    assert metrics["n_samples"] == 9
