"""The workflow on the tiny configuration: Snakemake and dvc.yaml describe the same stages; a build,
a no-op second run, and param or code changes that rerun exactly the affected stages, in both tools.

The drift checks read only the tools' public outputs: Snakemake's dry run (jobs, inputs, shell
commands) and DVC's (commands), against dvc.yaml resolved for params.yaml.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO
from tests.helpers.workflow import (
    MODEL_TARGET,
    SPOT_TARGET,
    SPOTTER_TARGET,
    TARGET,
    clone,
    dvc,
    get_param,
    make_copy,
    planned_rules,
    run,
    set_param,
    snakemake,
)

pytestmark = pytest.mark.slow

AFTER_TRAIN = {"train", "train_all", "evaluate", "spot_strs"}  # spot_strs: the long videos' clip dataset trains too
AFTER_INTERPOLATE = {"interpolate", "magnify", "features", "strips", *AFTER_TRAIN}
PARAM_CHANGES = {
    "magnify.alpha": (6.0, {"magnify", "features", "strips", *AFTER_TRAIN}),
    "train.lr": (0.003, AFTER_TRAIN),
    "train.seeds": ([0, 1], AFTER_TRAIN),
    "train.model": ("t3d", AFTER_TRAIN),  # a model of another input: the features hold it already
    "interpolate.frames": (6, AFTER_INTERPOLATE),
    "interpolate.method": ("linear", AFTER_INTERPOLATE),
    "face.size": (96, {"face", *AFTER_INTERPOLATE}),
    "report.strips": (2, {"strips"}),
}
EVERYTHING = (TARGET, "results/synth/strips", SPOT_TARGET, MODEL_TARGET, SPOTTER_TARGET)


def minimal_workflow(tmp_path: Path) -> Path:
    """The workflow folder and params.yaml: enough to parse the workflow."""
    root = tmp_path / "repo"
    for path in [REPO / "params.yaml", *(REPO / "workflow").rglob("*")]:
        if path.is_file() and "__pycache__" not in path.parts:
            target = root / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return root


def test_bad_params_name_the_key(tmp_path: Path) -> None:
    root = minimal_workflow(tmp_path)
    set_param(root, "magnify.alpah", 3)
    result = run(root, sys.executable, "-m", "snakemake", "-n", check=False)
    assert result.returncode != 0
    assert "magnify: unknown key(s) alpah" in result.stdout + result.stderr


def test_config_overrides_are_refused(tmp_path: Path) -> None:
    root = minimal_workflow(tmp_path)
    result = run(root, sys.executable, "-m", "snakemake", "-n", "--config", "ingest={label_set: emotion}", check=False)
    assert result.returncode != 0 and "overrides are not supported" in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# one description: dvc.yaml and the Snakefile


def snakemake_jobs(root: Path, *args: str) -> list[dict[str, Any]]:
    """Jobs of a dry run (rule, wildcards, inputs, command), parsed from Snakemake's printout."""
    output = snakemake(root, "-n", "--printshellcmds", *args).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", output):
        head = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        command = re.search(r"^Shell command: (.+)$", block, re.M)
        if not head or not command:
            continue
        inputs = re.search(r"^    input: (.+)$", block, re.M)
        wildcards = re.search(r"^    wildcards: (.+)$", block, re.M)
        jobs.append({
            "rule": head.group(1),
            "wildcards": dict(item.split("=", 1) for item in wildcards.group(1).split(", ")) if wildcards else {},
            "inputs": inputs.group(1).split(", ") if inputs else [],
            "command": command.group(1).strip(),
        })  # fmt: skip
    return jobs


def stage_name(job: dict[str, Any]) -> str:
    rule, wildcards = job["rule"], job["wildcards"]
    rule = {"spot_baseline": "spot_score", "spot_learned": "spot_score"}.get(rule, rule)
    dataset = wildcards.get("dataset", wildcards.get("lv"))
    if dataset and dataset.endswith("-spotted"):  # the clip dataset of a long-video dataset: its own DVC stages
        rule, dataset = f"{rule}_spotted", dataset.removesuffix("-spotted")
    if "shard" in wildcards:
        return f"{rule}@{dataset}-{wildcards['shard']}"
    return f"{rule}@{dataset}" if dataset else rule


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """dvc.yaml's ``${...}`` for the forms merec's dvc.yaml uses."""
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {resolve(k, variables): resolve(v, variables) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        node: Any = variables
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    return re.sub(r"\$\{([^}]+)\}", lookup, value)


def dvc_stages(root: Path) -> dict[str, dict[str, Any]]:
    """dvc.yaml's stages resolved for params.yaml (foreach over datasets, matrix of datasets x shards)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    stages = {}
    for name, stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items():
        if "foreach" in stage:
            over = stage["foreach"].strip("${}")  # datasets, or long_videos
            for key, item in params[over].items():
                item = {"root": f"data/raw/{key}", **item}
                stages[f"{name}@{key}"] = resolve(stage["do"], params | {"key": key, "item": item})
        elif "matrix" in stage:
            body = {k: v for k, v in stage.items() if k != "matrix"}
            (kind, over), _ = stage["matrix"].items()  # (dataset or lv: its params key), shard
            for dataset in params[over.strip("${}")]:
                for shard in params["ingest"]["shards"]:
                    item = {kind: dataset, "shard": shard}
                    stages[f"{name}@{dataset}-{shard}"] = resolve(body, params | {"item": item})
        else:
            stages[name] = resolve(stage, params)
    return stages


def _files(root: Path, paths: list[str]) -> set[str]:
    out = set()
    for path in paths:
        full = root / path
        if full.is_dir():
            out |= {str(p.relative_to(root)) for p in full.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        else:
            out.add(path)
    return out


def _paths(deps: list[Any]) -> list[str]:
    return [next(iter(d)) if isinstance(d, dict) else d for d in deps]


def normalise(command: str) -> str:
    """A Snakemake job's command as the DVC stage spells it: folders for shard and run lists, all folds."""
    command = re.sub(r"(\S+)/shard-\d+\.json(?: \1/shard-\d+\.json)+", r"\1", command)
    command = re.sub(r"(?<!--output )(results/[\w.-]+/folds)/seed-\d+/\S+(?: \1/seed-\d+/\S+)*", r"\1", command)
    command = re.sub(
        r"--fold \S+ --seed \S+ --output (results/[\w.-]+/folds)/\S+", r"--fold all --seed all --output \1", command
    )
    command = re.sub(r"(results/\w+/spotting/scores/\w+)/\S*curves\.npz(?: \1/\S*curves\.npz)*", r"\1", command)
    command = re.sub(r" --fold \S+ --seed \S+ (--log logs/\w+/spot_score)/seed-\d+/\S+\.log", r" \1.log", command)
    return re.sub(r"/train/\S+\.log", "/train/all.log", command)


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def both(built: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], Path]:
    # ingest, ingest_lv and spot_clips are checkpoints: the jobs after one are known once it is not to run again
    after_ingest = ("face", "interpolate", "magnify", "features", "au_graph", "train", "train_all", "evaluate",
                    "strips", "spot_strs")  # fmt: skip
    spotting = ("spot_features", "spot_baseline", "spot_train", "spot_evaluate")
    jobs = snakemake_jobs(built, "--forcerun", *after_ingest, *EVERYTHING)
    jobs += [
        j for j in snakemake_jobs(built, "--forcerun", *spotting, *EVERYTHING) if j["rule"] in (*spotting, "spot_clips")
    ]
    jobs += [
        j
        for j in snakemake_jobs(built, "--forceall", *EVERYTHING)
        if j["rule"] in ("magnet_train", "synth", "ingest", "synth_lv", "ingest_lv")
    ]
    return [job for job in jobs if job["rule"] != "all"], dvc_stages(built), built


def test_every_snakemake_job_belongs_to_a_dvc_stage_and_back(both) -> None:
    jobs, stages, _ = both
    assert {stage_name(job) for job in jobs} == set(stages)


def test_every_dvc_stage_has_a_place_in_the_order_outputs_are_stamped(both) -> None:
    """The one-state sync stamps outputs in data-flow order: a stage missing from it would look stale."""
    sys.path.insert(0, str(REPO / "workflow" / "rules"))
    import state

    _, stages, _ = both
    assert {name.split("@")[0] for name in stages} <= set(state.PIPELINE)


def test_jobs_and_stages_run_the_same_commands(both) -> None:
    jobs, stages, root = both
    dvc_commands = {
        line[2:].strip() for line in dvc(root, "repro", "--dry", "--force").stdout.splitlines() if line.startswith("> ")
    }
    assert {" ".join(stage["cmd"].split()) for stage in stages.values()} == dvc_commands
    for job in jobs:
        assert normalise(job["command"]) == " ".join(stages[stage_name(job)]["cmd"].split()), stage_name(job)


def test_jobs_and_stages_read_the_same_params_code_and_data(both) -> None:
    jobs, stages, root = both
    params_prefix = ".snakemake/merec/params/"
    for job in jobs:
        stage = stages[stage_name(job)]
        params = [p for p in job["inputs"] if p.startswith(params_prefix)]
        keys = {key for p in params for key in p[len(params_prefix) : -len(".json")].split("+")}
        assert keys == set(stage.get("params", [])), stage_name(job)
        deps = _paths(stage["deps"])
        code = {p for p in job["inputs"] if p.startswith("merec/") and not p.startswith("merec/weights/")}
        assert code == {p for p in _files(root, deps) if p.startswith("merec/") and "/weights/" not in p}
        data = normalise(" ".join(sorted(p for p in job["inputs"] if not p.startswith(("merec/", ".snakemake/")))))
        assert data == " ".join(sorted(d for d in deps if not d.startswith("merec/"))), stage_name(job)


def test_fold_jobs_request_a_gpu_only_when_params_ask_for_one(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    for device, expected in (("cuda", True), ("auto", False), ("cpu", False)):
        set_param(root, "train.device", device)
        output = snakemake(root, "-n", TARGET, "--forcerun", "train").stdout
        blocks = [b for b in output.split("\n\n") if "rule train:" in b]
        assert blocks and all(("gpu=1" in b) == expected for b in blocks), device


# ---------------------------------------------------------------------------------------------
# Snakemake: build, nothing to redo, exactly what a change affects


def test_snakemake_builds_everything_then_has_nothing_to_do(built: Path) -> None:
    loso = (built / "results/synth/loso.csv").read_text().splitlines()
    assert loso[0].startswith("fold,") and loso[-1].startswith("pooled,")
    metrics = json.loads((built / "results/synth/metrics.json").read_text())
    assert metrics["n_folds"] == 3 and metrics["n_samples"] == 9
    assert planned_rules(built, *EVERYTHING) == set()
    log = (built / "first-run.log").read_text()
    # one face job per shard (2) of synth and of the long videos' clip dataset synth_lv-spotted
    assert log.count("rule face:") == 4 and "magnet_train" not in log.split("Job stats:")[1].split("\n\n")[0]


SMALL_HTNET = {"dims": [8, 16, 32], "heads": [1, 2, 4], "depths": [1, 1, 1]}  # HTNet's layout, a few channels


@pytest.mark.parametrize(
    ("model", "options"),
    [("dsnca", {"width": 4, "input_size": 136}), ("htnet", SMALL_HTNET)],  # every input but rois/face; t3d, r3d
)  # read the frames as dsnca does: tests/test_models.py trains them
def test_a_model_of_another_input_trains_through_snakemake_on_the_built_features(
    built: Path, tmp_path: Path, model: str, options: dict
) -> None:
    """Frame volumes and the frontal apex (dsnca; t3d, r3d and capsule read the frames alone) and landmarks
    (htnet) come from the features already built."""
    root = clone(built, tmp_path)
    set_param(root, "train.model", model)
    for key, value in options.items():
        set_param(root, f"train.models.{model}.{key}", value)
    result = snakemake(root, TARGET)
    log = result.stdout + result.stderr
    assert "rule features:" not in log and "rule train:" in log
    assert json.loads((root / "results/synth/metrics.json").read_text())["n_samples"] == 9
    folds = [json.loads(path.read_text()) for path in (root / "results/synth/folds").rglob("fold.json")]
    assert len(folds) == 3 and {fold["model"] for fold in folds} == {model}


@pytest.mark.parametrize("dotted", list(PARAM_CHANGES))
def test_snakemake_param_change_reruns_exactly_the_affected_stages(built: Path, tmp_path: Path, dotted: str) -> None:
    root = clone(built, tmp_path)
    value, expected = PARAM_CHANGES[dotted]
    original = get_param(root, dotted)
    set_param(root, dotted, value)
    assert planned_rules(root, *EVERYTHING) == expected
    set_param(root, dotted, original)
    assert planned_rules(root, *EVERYTHING) == set()  # back as it was: nothing to do


def test_snakemake_code_change_reruns_the_stage_and_what_follows(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    code = root / "merec/features.py"
    code.write_text(code.read_text() + "\n# edited\n")
    # the spotting features compute their flow with the features stage's code
    assert planned_rules(root, *EVERYTHING) == {"features", "train", "evaluate", "spot_features", "spot_evaluate",
                                                "spot_baseline", "spot_clips", "spot_strs", "train_all",
                                                "spot_train"}  # fmt: skip


def test_magnet_training_runs_only_when_asked(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    set_param(root, "magnet_train.lr", 0.001)  # DVC retrains for this; Snakemake waits for --forcerun
    assert "magnet_train" not in planned_rules(root, *EVERYTHING)
    forced = planned_rules(root, *EVERYTHING, "--forcerun", "magnet_train")
    assert forced == {"magnet_train", "magnify", "features", "strips", *AFTER_TRAIN}
    assert "magnet_train" in dvc(root, "status", "magnet_train").stdout


def test_the_tiny_configuration_runs_from_its_folder(tmp_path: Path) -> None:
    """`snakemake --cores 2 --directory .test` plans the whole pipeline on .test/params.yaml, with the
    shipped MagNet weights (nothing to train) and the code of the checkout."""
    root = make_copy(tmp_path, params={})
    output = run(root, sys.executable, "-m", "snakemake", "--cores", "2", "--directory", ".test", "-n").stdout
    planned = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", output.split("Job stats:")[-1], re.M)}
    assert {"synth", "ingest", "face", "evaluate"} <= planned and "magnet_train" not in planned
    assert "../merec/face.py" in output  # code inputs are the checkout's


def test_spot_evaluate_reads_exactly_the_curves_of_the_current_folds_and_seeds(built: Path, tmp_path: Path) -> None:
    """Curves left in the folder by an earlier seed list are not read: the command names the files."""
    root = clone(built, tmp_path)
    set_param(root, "spot.method", "learned")
    set_param(root, "spot.learned.seeds", [1])
    stale = root / "results/synth_lv/spotting/scores/learned/seed-0/001/curves.npz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    (job,) = [j for j in snakemake_jobs(root, SPOT_TARGET) if j["rule"] == "spot_evaluate"]
    curves = job["command"].split("--curves ")[1].split(" --metrics")[0].split()
    assert len(curves) == 3 and all("/learned/seed-1/" in path for path in curves)


def test_the_raw_fingerprint_sees_every_visible_file_and_changes_with_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's dataset folder: hidden files and linked folders left out, a replaced or added frame noticed."""
    sys.path.insert(0, str(REPO / "workflow" / "rules"))
    import state

    release = tmp_path / "release"
    for relative in ("001/clip_a/img001.jpg", "001/clip_a/img002.jpg", "002/clip-b/img001.jpg", "labels.xlsx"):
        (release / relative).parent.mkdir(parents=True, exist_ok=True)
        (release / relative).write_bytes(relative.encode())
    (release / ".DS_Store").write_bytes(b"x")
    (release / ".git").mkdir()
    (release / ".git" / "HEAD").write_bytes(b"x")
    (release / "linked").symlink_to(release / "001", target_is_directory=True)
    monkeypatch.chdir(tmp_path)

    def fingerprint() -> dict:
        return json.loads(Path(state.raw_fingerprint("release", [release])).read_text())

    first = fingerprint()
    assert first["files"] == 4 and fingerprint() == first
    # the definition the recorded fingerprints were made with: sorted relative paths, size, mtime
    import hashlib

    digest = hashlib.sha256()
    visible = [p for p in release.rglob("*") if p.is_file() and not {".git", "linked", ".DS_Store"} & set(p.parts)]
    for relative in sorted(str(path.relative_to(release)) for path in visible):
        info = (release / relative).stat()
        digest.update(f"{release}/{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    assert first["digest"] == digest.hexdigest()
    frame = release / "002/clip-b/img001.jpg"
    frame.write_bytes(b"replaced")
    second = fingerprint()
    assert second["digest"] != first["digest"]
    (release / "002/clip-b/img002.jpg").write_bytes(b"new")
    assert fingerprint()["files"] == 5
