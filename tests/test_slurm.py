"""The `slurm` profile on a real one-node SLURM cluster, against the `local` profile.

workflow/scripts/slurm_cluster.sh starts slurmctld, slurmd and munged (installing the Debian packages
first when running as root) with a fake GPU; the tiny pipeline runs through sbatch with
`--profile workflow/profiles/slurm` while the same configuration runs with `--profile workflow/profiles/local`.
Proves: every rule ran as a SLURM job, the fold jobs asked for `--gpus=1` in the `gpu` partition and got the
node's one GPU one after another, the other jobs went to the `cpu` partition without a GPU, and both runs
reach identical results. Skipped where no cluster can be started (not root and SLURM not installed, or
apt cannot install it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from tests.helpers.workflow import TARGET, clone, environment

pytestmark = pytest.mark.slow

CLUSTER_SCRIPT = REPO / "workflow/scripts/slurm_cluster.sh"
CANNOT_START = 77  # the script's exit status when SLURM cannot be provided on this machine
PROFILE = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
# the test cluster has no accounting database: job states come from squeue (finished jobs stay listed)
SLURM_ARGS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "10", "--verbose")
RUN_TIMEOUT_S = 900
FORCE = ("--forcerun", "features")  # the feature shards, the folds and evaluate run again


@dataclass
class Runs:
    slurm: Path
    local: Path
    slurm_log: str
    local_log: str
    jobs: list[dict[str, str]]  # `scontrol show job` records of the SLURM run


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def cluster() -> Iterator[dict[str, str]]:
    """A running one-node cluster; yields the environment its clients need, stops it afterwards."""
    state = tempfile.mkdtemp(prefix="merec-slurm.")  # outside pytest's private tmp: munged must reach it
    try:
        up = subprocess.run(["bash", str(CLUSTER_SCRIPT), "up", state], capture_output=True, text=True, timeout=1200)
        if up.returncode == CANNOT_START:
            reason = up.stderr.strip().splitlines()[-1] if up.stderr.strip() else "no reason given"
            pytest.skip(f"no SLURM cluster on this machine: {reason}")
        assert up.returncode == 0, f"slurm_cluster.sh up failed:\n{up.stdout}\n{up.stderr}"
        exports = dict(re.findall(r"^export (\w+)=(.*)$", up.stdout, re.M))
        exports["PATH"] = exports["PATH"].replace("$PATH", os.environ["PATH"])
        yield exports
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "down", state], check=True, timeout=120)


def scontrol_jobs(env: dict[str, str]) -> list[dict[str, str]]:
    """All jobs the cluster still knows (finished ones included), as key=value records."""
    out = subprocess.run(["scontrol", "-o", "show", "job"], env=env, capture_output=True, text=True, check=True)
    return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in out.stdout.splitlines() if line.startswith("JobId=")]


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def runs(cluster: dict[str, str], built: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The tiny pipeline from the features on (one job per shard, per fold) through SLURM and, at the
    same time, locally; each in its own copy of the built project."""
    slurm_root = clone(built, tmp_path_factory.mktemp("slurm"))
    local_root = clone(built, tmp_path_factory.mktemp("local"))
    slurm_env = environment(slurm_root) | cluster
    slurm_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{cluster['PATH']}"
    commands = {
        "slurm": ([sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/slurm", *SLURM_ARGS, TARGET,
                   *FORCE], slurm_root, slurm_env),
        "local": ([sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local", "--cores", "2", TARGET,
                   *FORCE], local_root, environment(local_root)),
    }  # fmt: skip
    processes = {}
    for name, (command, root, env) in commands.items():
        with open(root / f"{name}-run.log", "w") as log:
            processes[name] = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    for process in processes.values():
        try:
            process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()  # the cluster's `down` cancels what it left queued
            process.wait()
    logs = {name: (commands[name][1] / f"{name}-run.log").read_text() for name in commands}
    for name, process in processes.items():
        assert process.returncode == 0, f"{name} run failed ({process.returncode}):\n{logs[name][-5000:]}"
    run_id = re.search(r"SLURM run ID: (\S+)", logs["slurm"])
    assert run_id, "the slurm executor did not report its run ID"
    jobs = [job for job in scontrol_jobs(slurm_env) if job.get("JobName") == run_id.group(1)]
    return Runs(slurm=slurm_root, local=local_root, slurm_log=logs["slurm"], local_log=logs["local"], jobs=jobs)


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job, from the comment the executor gives it: rule_<rule>[_wildcards_<values>]."""
    return re.sub(r"_wildcards_.*$", "", job["Comment"]).removeprefix("rule_")


def job_counts(log: str) -> Counter[str]:
    """Jobs per rule that a Snakemake run started ("rule train:", "localcheckpoint ingest:", ...)."""
    return Counter(m[1] for m in re.finditer(r"^(?:local)?(?:rule|checkpoint) (\w+):$", log, re.M))


def resources(rule: str) -> dict[str, object]:
    """The profile's resources for a rule: default-resources updated by its set-resources."""
    return PROFILE["default-resources"] | PROFILE["set-resources"].get(rule, {})


def test_every_job_of_the_local_run_runs_as_a_completed_slurm_job(runs: Runs) -> None:
    slurm_jobs = Counter(rule_of(job) for job in runs.jobs)
    assert slurm_jobs == job_counts(runs.local_log) == job_counts(runs.slurm_log)
    assert slurm_jobs["train"] > 1 and slurm_jobs["features"] == 2  # one job per fold, one per shard
    assert {job["JobState"] for job in runs.jobs} == {"COMPLETED"}


def test_sbatch_gets_the_profiles_resources_and_fold_jobs_one_gpu(runs: Runs) -> None:
    assert resources("train")["gpu"] == 1 and "gpu" not in PROFILE["default-resources"]
    calls = [line.split(" --wrap=", 1)[0] for line in runs.slurm_log.splitlines() if line.startswith("sbatch call: ")]
    assert len(calls) == len(runs.jobs)
    for options in calls:
        rule = re.search(r" --comment rule_(\w+?)(_wildcards_\S*)? ", options)[1]
        wanted = resources(rule)
        assert f" -p {wanted['slurm_partition']} " in options and f" --mem {wanted['mem_mb']} " in options, options
        assert f" -t {wanted['runtime']} " in options, options
        assert " -A " not in options, options  # the profile ships without an account, as the test cluster has none
        if rule == "train":
            assert options.endswith(" --gpus=1") or " --gpus=1 " in options, options
        else:
            assert "--gpus" not in options and "--gres" not in options, options
    for job in runs.jobs:  # what slurmctld recorded
        rule = rule_of(job)
        assert job["Partition"] == resources(rule)["slurm_partition"], job
        assert job.get("TresPerJob") == ("gres:gpu:1" if rule == "train" else None), job


def test_fold_jobs_share_the_nodes_single_gpu_one_at_a_time(runs: Runs) -> None:
    """SLURM allocated the fake GPU for real: with one GPU on the node, no two fold jobs ran at once."""
    spans = sorted(
        (datetime.fromisoformat(job["StartTime"]), datetime.fromisoformat(job["EndTime"]))
        for job in runs.jobs
        if rule_of(job) == "train"
    )
    assert all(later_start >= end for (_, end), (later_start, _) in pairwise(spans))


def test_slurm_and_local_runs_reach_identical_results(runs: Runs) -> None:
    for name in ("results/synth/metrics.json", "results/synth/predictions.csv", "results/synth/per_class.csv"):
        assert (runs.slurm / name).read_text() == (runs.local / name).read_text(), name
