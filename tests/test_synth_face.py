"""The synthetic dataset generator and the face stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merec.datasets import load_samples
from merec.datasets.synth import SynthParams, generate
from merec.face import FaceParams, align_clip, alignment_transform, apply_transform
from merec.face import run as run_face
from merec.io import MerecError, load_npz, read_image
from merec.landmarks import detect_faces, eye_centres
from tests.conftest import TINY_SYNTH


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
    generate(again, SynthParams(**TINY_SYNTH))
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
        generate(tmp_path / "out", SynthParams(photos=[str(blank)], subjects=2))
    assert not (tmp_path / "out").exists()


def test_alignment_puts_the_eyes_on_their_targets() -> None:
    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [100, 120]
    landmarks[42:48] = [160, 110]
    params = FaceParams(size=128, eye_y=0.4, eye_distance=0.3)
    transform = alignment_transform(landmarks, params)
    right, left = eye_centres(apply_transform(transform, landmarks))
    assert np.allclose(right, [(0.5 - 0.15) * 128, 0.4 * 128])
    assert np.allclose(left, [(0.5 + 0.15) * 128, 0.4 * 128])


def test_face_stage_crops_every_frame_with_the_onset_transform(tiny_synth: Path, tmp_path: Path) -> None:
    samples = load_samples("synth", {"format": "samm", "root": str(tiny_synth)}).samples.head(2)
    table = tmp_path / "samples.csv"
    samples.to_csv(table, index=False)
    skipped = run_face(table, tmp_path / "face", FaceParams(size=96))
    assert skipped.empty
    row = samples.iloc[0]
    arrays = load_npz(tmp_path / "face" / f"{row['sample']}.npz")
    n_frames = row["offset"] - row["onset"] + 1
    assert arrays["frames"].shape == (n_frames, 96, 96, 3)
    assert int(arrays["apex_index"]) == row["apex"] - row["onset"]
    right, left = eye_centres(arrays["landmarks"])
    assert abs(right[1] - left[1]) < 1.0  # eyes level after alignment
    faces = detect_faces(arrays["frames"][0], upsample=1)
    assert len(faces) == 1


def test_no_face_is_an_error_naming_the_sample_or_a_listed_skip(tiny_synth: Path, tmp_path: Path) -> None:
    blank = [np.full((120, 120, 3), 90, np.uint8)] * 3
    with pytest.raises(MerecError, match="sample s9: no face"):
        align_clip(blank, 1, "s9", FaceParams())
    samples = load_samples("synth", {"format": "samm", "root": str(tiny_synth)}).samples.head(2).copy()
    bad = tmp_path / "bad"
    bad.mkdir()
    for number in range(samples.iloc[0]["onset"], samples.iloc[0]["offset"] + 1):
        from merec.io import write_image

        write_image(bad / f"x_{number:05d}.jpg", blank[0])
    samples.loc[samples.index[0], "frames_dir"] = str(bad)
    table = tmp_path / "samples.csv"
    samples.to_csv(table, index=False)
    with pytest.raises(MerecError, match="no face"):
        run_face(table, tmp_path / "face_fail", FaceParams())
    assert not (tmp_path / "face_fail").exists()
    skipped = run_face(table, tmp_path / "face_skip", FaceParams(on_error="skip"))
    assert skipped["sample"].tolist() == [samples.iloc[0]["sample"]]
    assert pd.read_csv(tmp_path / "face_skip" / "skipped.csv")["sample"].tolist() == [samples.iloc[0]["sample"]]
    assert len(list((tmp_path / "face_skip").glob("*.npz"))) == 1
