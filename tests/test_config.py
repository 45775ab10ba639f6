"""params.yaml: schema violations name the key; every stage command refuses bad params before writing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from merec.cli import main
from merec.config import load_params, validate_params
from merec.io import (
    MerecError,
)
from tests.helpers import REPO

# ---------------------------------------------------------------------------------------------
# params that fail the schema


def params_with(**sections: object) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in sections.items():
        node = params
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return params


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"face__size": "large"}, "face.size: 'large': 'large' is not of type 'integer'"),
        ({"face__on_error": "ignore"}, "face.on_error: 'ignore'"),
        ({"ingest__label_set": "7class"}, "ingest.label_set: '7class'"),
        ({"features__flow": "lucas"}, "features.flow: 'lucas'"),
        ({"train__epochs": -1}, "train.epochs: -1"),
        ({"magnify__alpah": 3}, "magnify: unknown key(s) alpah; allowed:"),
        ({"datasets__bad/name": {"format": "samm", "root": "x"}}, "datasets"),
        ({"datasets__samm": {"format": "samm2", "root": "x"}}, "datasets.samm.format: 'samm2'"),
        ({"face": 3}, "face: 3: 3 is not of type 'object'"),
    ],
)
def test_params_that_fail_the_schema_name_the_key(change: dict, expected: str) -> None:
    with pytest.raises(MerecError) as info:
        validate_params(params_with(**change), "params.yaml")
    assert str(info.value).startswith("params.yaml is not valid:")
    assert expected in str(info.value)


def test_missing_section_and_broken_files(tmp_path: Path) -> None:
    params = params_with()
    del params["datasets"]
    with pytest.raises(MerecError, match="'datasets' is a required property"):
        validate_params(params)
    bad = tmp_path / "params.yaml"
    bad.write_text("face: [unclosed\n")
    with pytest.raises(MerecError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- a list\n")
    with pytest.raises(MerecError, match="expected a mapping"):
        load_params(bad)
    with pytest.raises(MerecError, match="params file not found"):
        load_params(tmp_path / "none.yaml")


def test_every_stage_command_refuses_bad_params_before_writing(tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(params_with(face__upsample=9)))
    out = tmp_path / "face"
    assert main(["face", "--params", str(params), "--input", "x.json", "--output", str(out / "shard-0.json")]) == 2
    err = capsys.readouterr().err
    assert "merec face: error:" in err and "face.upsample: 9" in err and "Traceback" not in err
    assert not out.exists()
