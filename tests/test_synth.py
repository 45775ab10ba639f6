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
    sheet = pd.read_excel(
        tiny_synth / "SAMM_Micro_FACS_Codes_v2.xlsx", sheet_name="MICRO_ONLY", header=13, engine="openpyxl"
    )
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


def test_default_subjects_are_different_people() -> None:
    from merec.landmarks import detect_faces
    from merec.synth.identities import make_identities, shape_distance

    identities = make_identities(12, np.random.default_rng([0, 1]))
    assert [identity.real for identity in identities] == [True, True] + [False] * 10
    assert len({identity.name for identity in identities}) == 12
    real_pair = shape_distance(identities[0].landmarks, identities[1].landmarks)
    for n, identity in enumerate(identities):
        (face,) = detect_faces(identity.image, upsample=1)[:1]  # the face stage finds every identity
        assert np.abs(face.landmarks - identity.landmarks).mean() < 5.0, identity.name
        for other in identities[:n]:  # no two faces nearly alike in shape
            assert shape_distance(identity.landmarks, other.landmarks) > 0.3 * real_pair, (identity.name, other.name)


def test_subjects_move_their_own_way_unless_variation_is_off() -> None:
    from merec.synth.identities import load_photos
    from merec.synth.motion import AU_FIELDS, canonical_components, displacement_field, draw_style

    face = load_photos([])[0].landmarks
    rotation, iod, shape = np.eye(2), float(np.linalg.norm(face[42:48].mean(0) - face[36:42].mean(0))), (512, 512)

    def field(style_components: tuple) -> np.ndarray:
        return displacement_field(style_components, face, rotation, iod, shape).ravel()

    first, second = (draw_style(np.random.default_rng(seed)) for seed in (1, 2))
    same = draw_style(np.random.default_rng(3), variation=0.0)
    canonical = field(canonical_components(AU_FIELDS[12]))
    assert np.allclose(field(same.components[12]), canonical)
    for au in (1, 4, 12, 15):
        a, b = field(first.components[au]), field(second.components[au])
        assert np.corrcoef(a, b)[0, 1] < 0.97, au  # the same AU, another morphology
    assert (first.rise_power, first.fall_power) != (second.rise_power, second.fall_power)


def test_appearance_carries_no_class_information(tmp_path: Path) -> None:
    """Per-clip appearance statistics of the first frame (before any motion) predict the class at chance."""
    from scipy.stats import binomtest
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params = {"subjects": 8, "samples_per_class": 3, "frame_size": 128, "clip_frames": 32, "seed": 5}
    generate(tmp_path / "synth", SynthParams.from_mapping(params))
    samples = load_samples("synth", {"format": "samm", "root": str(tmp_path / "synth")}).samples
    stats = []
    for row in samples.itertuples():
        first = read_image(sorted((tmp_path / "synth" / row.frames_dir).glob("*.jpg"))[0]).astype(np.float64)
        thumbnail = first.mean(axis=2)[::32, ::32].ravel()
        stats.append(np.concatenate([first.mean(axis=(0, 1)), first.std(axis=(0, 1)), thumbnail]))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    predicted = cross_val_predict(model, np.array(stats), samples["label"].to_numpy(), cv=folds)
    correct = int((predicted == samples["label"].to_numpy()).sum())
    assert binomtest(correct, len(samples), 1 / 3, alternative="greater").pvalue > 0.001, correct


def test_a_static_head_turn_is_what_the_face_stage_measures(tmp_path: Path) -> None:
    from merec.frontalize import estimate_pose
    from merec.landmarks import detect_faces
    from merec.synth.clips import clip_pose

    params = SynthParams.from_mapping(TINY_SYNTH | {"head_pose_deg": 20})
    generate(tmp_path / "turned", params)
    meta = json.loads((tmp_path / "turned" / "synth.json").read_text())
    drawn, measured = [], []
    for clip in meta["clips"][:8]:
        first = sorted((tmp_path / "turned" / f"{clip['subject']:03d}" / clip["filename"]).glob("*.jpg"))[0]
        (face,) = detect_faces(read_image(first), upsample=1)
        drawn.append(clip_pose(params, clip["subject"], clip["filename"])[0])
        measured.append(estimate_pose(face.landmarks).yaw_deg)
    assert max(abs(yaw) for yaw in drawn) > 5  # the clips are turned, each its own way
    assert np.corrcoef(drawn, measured)[0, 1] > 0.9
