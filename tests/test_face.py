"""The face stage: alignment on the onset frame, every frame cropped alike, and bad clips (missing or
odd frames, no face, two faces) as errors naming the sample, or listed skips.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merec.datasets import load_samples
from merec.face import FaceParams, align_clip, alignment_transform, apply_transform
from merec.face import run as run_face
from merec.io import (
    MerecError,
    load_npz,
)
from merec.landmarks import detect_faces, eye_centres
from merec.shards import Shard, read_shard
from tests.helpers.images import BIG_AND_SMALL, NO_FACE, ONE_FACE, TWO_FACES, encoded
from tests.helpers.stages import clip_list, stage_arrays

# ---------------------------------------------------------------------------------------------
# the face stage on bad clips


def write_clip(folder: Path, frames: list[np.ndarray], first: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, frame in enumerate(frames, start=first):
        cv2.imwrite(str(folder / f"img{number}.jpg"), np.ascontiguousarray(frame[..., ::-1]))


def clip_table(tmp_path: Path, clips: dict[str, tuple[str, list[np.ndarray]]]) -> Path:
    """samples.csv for clips ``sample -> (subject, frames)`` written under ``tmp_path/frames``."""
    rows = []
    for sample, (subject, frames) in clips.items():
        folder = tmp_path / "frames" / sample
        write_clip(folder, frames)
        rows.append({
            "dataset": "t", "subject": f"t/{subject}", "fold": f"t-{subject}", "sample": sample,
            "frames_dir": str(folder), "onset": 1, "apex": 2, "offset": len(frames), "emotion": "happiness",
            "label": "positive", "aus": "12", "action_units": "12",
        })  # fmt: skip
    return clip_list(pd.DataFrame(rows), tmp_path / "clips")


def face_error(clips: Path, output: Path, **params: object) -> str:
    with pytest.raises(MerecError) as info:
        run_face(clips, output / "shard-0.json", FaceParams.from_mapping(params))
    assert not list(output.glob("shard-0*")), "a failed stage must not leave its output"
    return str(info.value)


def align(clips: Path, output: Path, **params: object) -> Shard:
    """Run the face stage on a clip list into ``output/shard-0``; returns the shard."""
    return run_face(clips, output / "shard-0.json", FaceParams.from_mapping(params))


def test_bad_frames_name_the_sample_and_the_file(tmp_path: Path) -> None:
    table = clip_table(tmp_path, {"a-1": ("a", [ONE_FACE] * 3), "b-1": ("b", [ONE_FACE] * 3)})
    folder = tmp_path / "frames" / "a-1"
    (folder / "img2.jpg").write_bytes(b"")
    message = face_error(table, tmp_path / "face")
    assert "sample a-1" in message and str(folder / "img2.jpg") in message and "empty (0 bytes)" in message

    (folder / "img2.jpg").write_bytes(encoded(".jpg")[:500])
    message = face_error(table, tmp_path / "face")
    assert "sample a-1" in message and str(folder / "img2.jpg") in message

    (folder / "img2.jpg").unlink()
    message = face_error(table, tmp_path / "face")
    assert f"sample a-1: {folder / 'img2.jpg'}: frame file is missing" in message


def test_a_frame_of_another_size_is_named(tmp_path: Path) -> None:
    small = cv2.resize(ONE_FACE, (200, 100))
    table = clip_table(tmp_path, {"a-1": ("a", [ONE_FACE, ONE_FACE, small, ONE_FACE])})
    message = face_error(table, tmp_path / "face")
    assert "sample a-1: frames differ in size" in message
    assert "most are 400x200 but img3.jpg is 200x100" in message
    assert "img1.jpg" not in message and "restore these frame files" in message


def test_no_face_and_two_similar_faces_are_errors_naming_the_sample(tmp_path: Path) -> None:
    table = clip_table(tmp_path, {"a-1": ("a", [NO_FACE] * 3)})
    message = face_error(table, tmp_path / "face")
    assert "sample a-1: no face found on the onset frame" in message
    assert str(tmp_path / "frames" / "a-1" / "img1.jpg") in message and "face.on_error: skip" in message

    table = clip_table(tmp_path, {"a-2": ("a", [TWO_FACES] * 3)})
    message = face_error(table, tmp_path / "face")
    assert "sample a-2: 2 faces of similar size found on the onset frame" in message
    assert "crop the frames to one person" in message


def test_a_much_smaller_second_face_is_ignored_with_a_warning(tmp_path: Path, caplog) -> None:
    table = clip_table(tmp_path, {"a-1": ("a", [BIG_AND_SMALL] * 3), "a-2": ("a", [ONE_FACE] * 3)})
    with caplog.at_level(logging.WARNING, logger="merec.face"):
        shard = align(table, tmp_path / "face", size=64)
    assert not shard.skipped
    assert "sample a-1: 2 faces found" in caplog.text and "using the largest" in caplog.text
    both = load_npz(shard.file("a-1"))["transform"]
    alone = load_npz(shard.file("a-2"))["transform"]
    assert np.allclose(both, alone, atol=0.05)  # the large face, at the same place in both clips


def test_skip_lists_every_bad_clip_and_keeps_the_good_ones(tmp_path: Path) -> None:
    clips = {
        "a-1": ("a", [ONE_FACE] * 3),
        "a-2": ("a", [NO_FACE] * 3),
        "a-3": ("a", [TWO_FACES] * 3),
        "b-1": ("b", [ONE_FACE] * 3),
        "b-2": ("b", [ONE_FACE] * 3),
    }
    table = clip_table(tmp_path, clips)
    (tmp_path / "frames" / "b-2" / "img3.jpg").write_bytes(b"")
    shard = align(table, tmp_path / "face", size=64, on_error="skip")
    assert sorted(shard.skipped) == ["a-2", "a-3", "b-2"]
    reasons = [shard.skipped[s] for s in ("a-2", "a-3", "b-2")]
    assert "no face" in reasons[0] and "faces of similar size" in reasons[1] and "empty" in reasons[2]
    assert sorted(stage_arrays(tmp_path / "face")) == ["a-1", "b-1"]
    assert read_shard(tmp_path / "face" / "shard-0.json").skipped == shard.skipped  # listed in the manifest


@pytest.mark.parametrize("on_error", ["skip", "fail"])
def test_face_gives_the_same_outputs_and_errors_with_one_or_two_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_error: str
) -> None:
    clips = {"a-1": ("a", [ONE_FACE] * 3), "a-2": ("a", [NO_FACE] * 3), "a-3": ("a", [TWO_FACES] * 3)}
    clips |= {f"b-{i}": ("b", [ONE_FACE] * 3) for i in range(4)}
    table = clip_table(tmp_path, clips)
    outcome = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", workers)
        output = tmp_path / f"face-{workers}"
        try:
            shard = align(table, output, size=64, on_error=on_error)
        except MerecError as exc:
            outcome[workers] = str(exc)
            assert not list(output.glob("*shard-0*"))  # nothing half-written
            continue
        arrays = {sample: values["frames"].tobytes() for sample, values in stage_arrays(output).items()}
        outcome[workers] = (sorted(shard.skipped), arrays)
    assert outcome["1"] == outcome["2"]
    if on_error == "fail":
        assert "sample a-2: no face found" in outcome["1"]  # the first bad sample in table order


def test_face_refuses_sample_ids_that_are_not_plain_names(tmp_path: Path) -> None:
    table = clip_table(tmp_path, {"a-1": ("a", [ONE_FACE] * 3)})
    record = json.loads(table.read_text())
    record["clips"][0]["row"]["sample"] = "../../escaped"
    table.write_text(json.dumps(record))
    message = face_error(table, tmp_path / "face")
    assert f"{table}: sample id '../../escaped' is not a plain name" in message
    assert not list(tmp_path.rglob("escaped.npz"))


def test_alignment_puts_the_eyes_on_their_targets() -> None:
    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [100, 120]
    landmarks[42:48] = [160, 110]
    params = FaceParams.from_mapping({"size": 128, "eye_y": 0.4, "eye_distance": 0.3})
    transform = alignment_transform(landmarks, params)
    right, left = eye_centres(apply_transform(transform, landmarks))
    assert np.allclose(right, [(0.5 - 0.15) * 128, 0.4 * 128])
    assert np.allclose(left, [(0.5 + 0.15) * 128, 0.4 * 128])


def test_face_stage_crops_every_frame_with_the_onset_transform(tiny_synth: Path, tmp_path: Path) -> None:
    samples = load_samples("synth", {"format": "samm", "root": str(tiny_synth)}).samples.head(2)
    shard = align(clip_list(samples, tmp_path / "clips"), tmp_path / "face", size=96)
    assert not shard.skipped
    row = samples.iloc[0]
    arrays = load_npz(shard.file(row["sample"]))
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
        align_clip(blank, 1, "s9", FaceParams.from_mapping())
    samples = load_samples("synth", {"format": "samm", "root": str(tiny_synth)}).samples.head(2).copy()
    bad = tmp_path / "bad"
    bad.mkdir()
    for number in range(samples.iloc[0]["onset"], samples.iloc[0]["offset"] + 1):
        from merec.io import write_image

        write_image(bad / f"x_{number:05d}.jpg", blank[0])
    samples.loc[samples.index[0], "frames_dir"] = str(bad)
    table = clip_list(samples, tmp_path / "clips")
    assert "no face" in face_error(table, tmp_path / "face_fail")
    shard = align(table, tmp_path / "face_skip", on_error="skip")
    assert list(shard.skipped) == [samples.iloc[0]["sample"]]
    assert len(list((tmp_path / "face_skip" / "shard-0").glob("*.npz"))) == 1
