"""The synthetic dataset generator: SAMM's layout, determinism, subtle localised motion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merec.datasets import load_samples
from merec.io import (
    MerecError,
    read_image,
)
from merec.synth import SynthParams, generate
from tests.helpers.tiny import TINY_SYNTH


def test_synth_is_read_by_the_samm_adapter(tiny_synth: Path) -> None:
    samples = load_samples("synth", {"format": "samm", "root": str(tiny_synth)}).samples
    assert len(samples) == 9 and samples["fold"].nunique() == 3
    assert sorted(samples["label"].value_counts().tolist()) == [3, 3, 3]
    assert (samples["onset"] < samples["apex"]).all() and (samples["apex"] < samples["offset"]).all()
    surprise = samples[samples["label"] == "surprise"]
    assert all("1" in aus.split("+") and "2" in aus.split("+") for aus in surprise["aus"])


def test_synth_workbook_has_samm_layout(tiny_synth: Path) -> None:
    sheet = pd.read_excel(tiny_synth / "SAMM_Micro_FACS_Codes_v2.xlsx", sheet_name="MICRO_ONLY", header=13)
    assert list(sheet.columns[:6]) == [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
    ]
    first = sheet.iloc[0]
    frame = (
        tiny_synth
        / f"{first['Subject']:03d}"
        / first["Filename"]
        / f"{first['Subject']:03d}_{first['Onset Frame']:05d}.jpg"
    )
    assert frame.is_file()


def test_synth_is_deterministic_from_its_seed(tiny_synth: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, SynthParams.from_mapping(TINY_SYNTH))
    first = sorted(tiny_synth.rglob("*.jpg"))[5]
    assert np.array_equal(read_image(first), read_image(again / first.relative_to(tiny_synth)))
    assert json.loads((again / "synth.json").read_text()) == json.loads((tiny_synth / "synth.json").read_text())


def test_synth_expression_is_subtle_and_localised(tiny_synth: Path) -> None:
    meta = json.loads((tiny_synth / "synth.json").read_text())
    clip = next(c for c in meta["clips"] if c["blink_at"] is None)
    folder = tiny_synth / f"{clip['subject']:03d}" / clip["filename"]
    frames = sorted(folder.glob("*.jpg"))
    onset, apex = read_image(frames[clip["onset"]]), read_image(frames[clip["apex"]])
    change = np.abs(apex.astype(float) - onset.astype(float)).mean()
    assert 0.5 < change < 12  # noise + drift + micro-motion: visible only as a small change


def test_synth_rejects_a_photo_without_a_face(tmp_path: Path) -> None:
    from merec.io import write_image

    blank = tmp_path / "blank.png"
    write_image(blank, np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(MerecError, match="no face"):
        generate(tmp_path / "out", SynthParams.from_mapping({"photos": [str(blank)], "subjects": 2}))
    assert not (tmp_path / "out").exists()
