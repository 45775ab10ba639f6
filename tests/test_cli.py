"""The merec command: clear one-paragraph errors with exit status 2, and params validation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from merec.cli import main
from merec.config import load_params
from merec.errors import MerecError
from tests.helpers import REPO


def write_params(tmp_path: Path, **changes: dict) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in changes.items():
        params[section].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_missing_dataset_says_what_to_put_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path, datasets={"samm": {"format": "samm", "root": str(tmp_path / "nowhere")}})
    code = main(["ingest", "--params", str(params), "--dataset", "samm", "--output", str(tmp_path / "s.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "SAMM_Micro_FACS_Codes_v2.xlsx" in err
    assert not (tmp_path / "s.csv").exists()


def test_unlisted_dataset_and_bad_params_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path)
    assert main(["ingest", "--params", str(params), "--dataset", "casme9", "--output", str(tmp_path / "s.csv")]) == 2
    assert "dataset 'casme9' is not declared in params.yaml" in capsys.readouterr().err
    bad = write_params(tmp_path, train={"epochs": 0, "optimiser": "sgd"})
    with pytest.raises(MerecError) as info:
        load_params(bad)
    message = str(info.value)
    assert "train.epochs: 0" in message and "unknown key(s) optimiser" in message


def test_a_stage_command_runs_and_logs_to_a_file(tiny_synth: Path, tmp_path: Path) -> None:
    root = tmp_path / "synth"
    shutil.copytree(tiny_synth, root)
    params = write_params(tmp_path, datasets={"synth": {"format": "samm", "root": str(root)}})
    log = tmp_path / "logs" / "ingest.log"
    out = tmp_path / "interim" / "samples.csv"
    assert main(["ingest", "--params", str(params), "--dataset", "synth", "--output", str(out), "--log", str(log)]) == 0
    assert out.is_file() and (out.parent / "classes.json").is_file() and (out.parent / "skipped.csv").is_file()
    shards = sorted(p.name for p in (out.parent / "clips").iterdir())
    assert shards == [f"shard-{k}.json" for k in range(4)]  # ingest.shards: the clip list of every shard
    assert "9 samples of 3 subjects" in log.read_text()
    # every command ends with its time and peak memory (the scale benchmark reads these lines)
    assert re.search(r"ingest done in [\d.]+ s; peak memory \d+ MiB \(this process\)", log.read_text())


def test_long_video_commands_name_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path)
    out = str(tmp_path / "videos.csv")
    assert main(["ingest-lv", "--params", str(params), "--dataset", "samm", "--output", out]) == 2
    assert "dataset 'samm' is not declared in params.yaml" in capsys.readouterr().err  # a short-clip set
    assert main(["ingest-lv", "--params", str(params), "--dataset", "samm_lv", "--output", out]) == 2
    assert "data/raw/samm_lv does not exist; put the release there" in capsys.readouterr().err
    args = ["spot-score", "--params", str(params), "--videos", out, "--features", str(tmp_path), "--output",
            str(tmp_path / "scores"), "--fold", "001"]  # fmt: skip
    assert main(args) == 2
    assert "spot.method is baseline: it trains nothing" in capsys.readouterr().err
