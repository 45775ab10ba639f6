"""One state: after either tool has run, the other has nothing to redo, and both give the same bytes.

* Snakemake -> DVC: after a Snakemake run, `dvc status` is clean and `dvc repro` runs nothing.
* DVC -> Snakemake: after `dvc repro`, `dvc exp apply` or a checkout of an older state, `snakemake -n`
  plans exactly what really differs (nothing, when nothing does).
* A changed frame file of a user's dataset reruns the stages that read it, for its shard only, in
  both tools, and fails naming the file; the user's literal command for a real dataset works.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from merec.shards import shard_of
from tests.helpers.workflow import (
    MODEL_TARGET,
    SPOT_TARGET,
    SPOTTER_TARGET,
    TARGET,
    clone,
    dvc,
    dvc_ran,
    make_copy,
    planned_rules,
    run,
    set_param,
    snakemake,
)

pytestmark = pytest.mark.slow
EVERYTHING = (TARGET, "results/synth/strips")
SPOTTED_AFTER_MAGNIFY = {"magnify_spotted", "features_spotted", "train_spotted", "spot_strs"}  # the clip dataset's
DVC_CHANGES = {  # train-only changes: test_exp_apply_and_checkout_then_snakemake_plans_only_what_differs
    "magnify.alpha": (6.0, {"magnify", "features", "train", "train_all", "evaluate", "strips", *SPOTTED_AFTER_MAGNIFY}),
}
RESULT_FILES = ("metrics.json", "predictions.csv", "loso.csv", "per_class.csv", "plots/confusion.csv")


def test_after_snakemake_dvc_status_is_clean_and_dvc_repro_runs_nothing(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    assert "Data and pipelines are up to date" in dvc(root, "status").stdout
    assert dvc_ran(dvc(root, "repro").stdout) == set()  # ingest@samm recorded by the Snakemake run
    assert planned_rules(root, *EVERYTHING) == set()


def test_recording_a_stage_dvc_does_not_know_fails_naming_it_and_leaves_the_lock(built: Path) -> None:
    lock = (built / "dvc.lock").read_bytes()
    result = run(
        built, sys.executable, "workflow/rules/state.py", "commit", "face@synth-0", "face@nowhere-9", check=False
    )
    assert result.returncode != 0 and "no such DVC stage: face@nowhere-9" in result.stderr
    assert (built / "dvc.lock").read_bytes() == lock


@pytest.mark.parametrize("dotted", list(DVC_CHANGES))
def test_after_dvc_repro_snakemake_has_nothing_to_do_and_the_bytes_agree(
    built: Path, tmp_path: Path, dotted: str
) -> None:
    root = clone(built, tmp_path)
    value, expected = DVC_CHANGES[dotted]
    set_param(root, dotted, value)
    assert dvc_ran(dvc(root, "repro").stdout) == expected  # exactly the stages after the change
    assert planned_rules(root, *EVERYTHING) == set()  # Snakemake takes what DVC made
    by_dvc = {name: (root / "results/synth" / name).read_bytes() for name in RESULT_FILES}
    snakemake(root, *EVERYTHING, "--forcerun", "train")
    for name, content in by_dvc.items():
        assert (root / "results/synth" / name).read_bytes() == content, name  # the same bytes, either tool
    assert "Data and pipelines are up to date" in dvc(root, "status").stdout


def test_exp_apply_and_checkout_then_snakemake_plans_only_what_differs(built: Path, tmp_path: Path) -> None:
    root = clone(built, tmp_path)
    baseline = (root / "results/synth/metrics.json").read_text()
    ran = dvc_ran(dvc(root, "exp", "run", "-S", "train.lr=0.003", "-n", "lr3").stdout)
    assert ran == {"train", "train_all", "evaluate", "train_spotted", "spot_strs"}  # the long videos' recogniser too
    experiment = (root / "results/synth/metrics.json").read_text()
    # back to the committed state: git for params and dvc.lock, DVC for the outputs
    run(root, "git", "checkout", "--", ".")
    dvc(root, "checkout", "--force")
    assert (root / "results/synth/metrics.json").read_text() == baseline
    assert planned_rules(root, *EVERYTHING) == set()
    dvc(root, "exp", "apply", "lr3")
    assert (root / "results/synth/metrics.json").read_text() == experiment
    assert planned_rules(root, *EVERYTHING) == set()
    set_param(root, "train.epochs", 3)  # what really differs is still seen
    assert planned_rules(root, *EVERYTHING) == {"train", "evaluate"}


def test_a_checkout_with_what_dvc_made_but_no_snakemake_records_has_nothing_to_redo(
    built: Path, tmp_path: Path
) -> None:
    """A fresh clone after `dvc pull` or `dvc repro`: no .snakemake/ yet, every output DVC recorded is there.
    The params files that input functions write (each dataset's ingest params) must not look newer."""
    root = clone(built, tmp_path)
    shutil.rmtree(root / ".snakemake")
    assert planned_rules(root, *EVERYTHING, SPOT_TARGET, MODEL_TARGET, SPOTTER_TARGET) == set()


def test_a_fresh_clone_holds_the_shipped_magnet_weights_as_up_to_date(tmp_path: Path) -> None:
    """Nothing built yet: DVC lists the data stages to run, and not the training of the shipped weights."""
    root = make_copy(tmp_path)
    status = dvc(root, "status", "--json").stdout
    assert "magnet_train" not in json.loads(status) and "face@synth-0" in json.loads(status)
    assert "magnet_train" not in planned_rules(root, *EVERYTHING)


# ---------------------------------------------------------------------------------------------
# a user's dataset: SAMM's layout under data/raw/samm


@pytest.fixture(scope="session")  # session: xdist may run the module in pieces
def samm(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clone whose data/raw/samm holds a dataset as SAMM ships it; the user's literal command, first
    without the folder (a clear message), then with it (the whole pipeline)."""
    root = clone(built, tmp_path_factory.mktemp("samm"))
    command = (sys.executable, "-m", "snakemake", "--cores", "8", "results/samm/loso.csv")
    missing = run(root, *command, check=False)
    message = missing.stdout + missing.stderr
    shutil.copytree(root / "data/raw/synth", root / "data/raw/samm")  # the synthetic data is in SAMM's layout
    set_param(root, "datasets.samm", {"format": "samm", "root": "data/raw/samm"})  # in `datasets:`: DVC runs it too
    run(root, *command)
    snakemake(
        root, "results/samm/strips", "results/samm/model"
    )  # all of the dataset's stages, as `dvc repro` knows them
    return root, message


def test_the_users_command_names_the_folder_and_files_then_runs(samm: tuple[Path, str]) -> None:
    root, message = samm
    assert "dataset samm: data/raw/samm does not exist" in message
    assert "SAMM_Micro_FACS_Codes_v2.xlsx" in message and "docs/datasets.md" in message
    assert json.loads((root / "results/samm/metrics.json").read_text())["n_samples"] == 9
    assert "Data and pipelines are up to date" in dvc(root, "status").stdout  # recorded for DVC too


def _first_sample(root: Path) -> tuple[pd.Series, Path, int]:
    samples = pd.read_csv(root / "data/interim/samm/samples.csv", dtype=str)
    row = samples.iloc[0]
    frame = sorted(Path(root / row["frames_dir"]).glob("*.jpg"))[int(row["apex"]) - int(row["onset"])]
    return row, frame, shard_of(row["sample"], 2)


def test_a_truncated_frame_reruns_its_shard_in_both_tools_and_fails_naming_it(
    samm: tuple[Path, str], tmp_path: Path
) -> None:
    root = clone(samm[0], tmp_path)
    _, frame, shard = _first_sample(root)
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size // 2])  # replaced in place by a truncated copy
    failed = snakemake(root, "results/samm/loso.csv", check=False)
    output = failed.stdout + failed.stderr
    named = re.compile(rf"{re.escape(str(frame.relative_to(root)))}: frame file is (truncated|corrupt)")
    assert failed.returncode != 0 and named.search(output)
    assert "rule face:" in output and f"shard={shard}" in output and f"shard={1 - shard}" not in output
    repro = dvc(root, "repro", check=False)
    assert repro.returncode != 0 and named.search(repro.stdout + repro.stderr)
    assert f"Stage 'face@samm-{1 - shard}' didn't change" in repro.stdout  # the other shard is left alone
    assert re.search(rf"Running stage 'face@samm-{shard}'", repro.stdout)


def test_an_added_frame_outside_every_clip_reruns_ingest_only(samm: tuple[Path, str], tmp_path: Path) -> None:
    root = clone(samm[0], tmp_path)
    _, frame, _ = _first_sample(root)
    extra = frame.with_name(re.sub(r"\d+(?=\.jpg$)", "99999", frame.name))
    shutil.copy(frame, extra)
    result = snakemake(root, "results/samm/loso.csv")
    ran = set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", result.stdout + result.stderr))
    assert ran == {"ingest"}  # the clip lists did not change: nothing after ingest runs
    assert planned_rules(root, "results/samm/loso.csv") == set()
    assert dvc_ran(dvc(root, "repro").stdout) == set()  # ingest@samm recorded by the Snakemake run


def test_a_removed_frame_stops_both_tools_at_ingest_naming_it(samm: tuple[Path, str], tmp_path: Path) -> None:
    root = clone(samm[0], tmp_path)
    _, frame, _ = _first_sample(root)
    frame.unlink()
    failed = snakemake(root, "results/samm/loso.csv", check=False)
    missing = re.compile(rf"frame file\(s\) for \w+ \d+ missing in {re.escape(str(frame.parent.relative_to(root)))}")
    assert failed.returncode != 0 and missing.search(failed.stdout + failed.stderr)
    repro = dvc(root, "repro", check=False)
    assert repro.returncode != 0 and missing.search(repro.stdout + repro.stderr)


def test_a_changed_annotation_row_reruns_the_shard_of_its_clip(samm: tuple[Path, str], tmp_path: Path) -> None:
    """A corrected AU code of one clip: its clip list changes (so its face shard reruns), and the AU
    graph with what follows; the other shard is left alone."""
    import openpyxl

    root = clone(samm[0], tmp_path)
    row, _, shard = _first_sample(root)
    workbook = root / "data/raw/samm/SAMM_Micro_FACS_Codes_v2.xlsx"
    book = openpyxl.load_workbook(workbook)
    sheet = book["MICRO_ONLY"]
    clip = row["sample"].split("-", 2)[2]
    (cell,) = [r[8] for r in sheet.iter_rows(min_row=15) if r[1].value == clip]  # column I: Action Units
    cell.value = f"{cell.value}+25"
    book.save(workbook)
    result = snakemake(root, "results/samm/loso.csv")
    ran = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", result.stdout + result.stderr)
    assert ran.count("face") == 1 and {"ingest", "au_graph", "train", "evaluate"} <= set(ran)
    assert re.search(rf"wildcards: dataset=samm, shard={shard}", result.stdout + result.stderr)
    assert dvc_ran(dvc(root, "repro", "evaluate@samm").stdout) == set()
