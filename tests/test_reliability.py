"""Bad input, safe loading and atomic writes: every problem is an error naming the file or sample
and saying what to do, or (``on_error: skip``) a skip listed in a report; nothing half-written is
ever taken as done; checkpoints and archives never run pickled code.

The interruption and determinism tests (Snakemake killed with SIGKILL) are in
``tests/test_interruption.py``, the held-out-subject leakage tests in ``tests/test_leakage.py``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from dataset_fixtures import SAMM_ROWS, make_samm, rows_of
from skimage import data

from merec import features as features_stage
from merec.checkpoints import load_state_dict, read_state_dict, save_state_dict
from merec.cli import main
from merec.config import load_params, validate_params
from merec.datasets import load_samples
from merec.datasets.ingest import run as ingest
from merec.face import FaceParams
from merec.face import run as run_face
from merec.features import FeatureParams
from merec.io import (
    MerecError,
    atomic_dir,
    atomic_path,
    load_npz,
    map_sample_dir,
    read_image,
    sample_files,
    save_npz,
    write_csv,
    write_json,
)
from merec.models import build_model
from tests.conftest import REPO

# ---------------------------------------------------------------------------------------------
# frame files


def encoded(suffix: str, size: int = 64) -> bytes:
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(data.astronaut()[:size, :size, ::-1]))
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp"])
def test_truncated_and_empty_frames_name_the_file(tmp_path: Path, suffix: str) -> None:
    whole = encoded(suffix)
    for fraction in (0.3, 0.9):
        frame = tmp_path / f"img{int(fraction * 10)}{suffix}"
        frame.write_bytes(whole[: int(len(whole) * fraction)])
        with pytest.raises(MerecError, match=r"(corrupt|truncated).*restore it from the original data") as info:
            read_image(frame)
        assert str(frame) in str(info.value)
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(MerecError, match=r"empty \(0 bytes\)"):
        read_image(empty)
    with pytest.raises(MerecError, match="frame file is missing"):
        read_image(tmp_path / f"absent{suffix}")
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(MerecError, match="corrupt or not an image"):
        read_image(junk)


def test_truncated_jpeg_is_caught_where_opencv_decodes_it_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older OpenCV builds return a partly grey image for a truncated JPEG: the end marker decides."""
    whole = encoded(".jpg")
    frame = tmp_path / "img1.jpg"
    frame.write_bytes(whole[: len(whole) * 2 // 3])
    monkeypatch.setattr(cv2, "imdecode", lambda buffer, flags: np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(MerecError, match="truncated"):
        read_image(frame)


def test_complete_jpeg_with_padding_or_trailing_data_is_read(tmp_path: Path) -> None:
    whole = encoded(".jpg")
    reference = cv2.imdecode(np.frombuffer(whole, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    for tail in (b"\x00" * 7, b"\xff\xff", b"trailing metadata written after the image"):
        frame = tmp_path / "img1.jpg"
        frame.write_bytes(whole + tail)
        assert np.array_equal(read_image(frame), reference)
    assert read_image(frame, grayscale=True).shape == (64, 64)


# ---------------------------------------------------------------------------------------------
# the face stage on bad clips


def face_image() -> np.ndarray:
    """A 180 px crop around the astronaut's face (dlib finds one face in it)."""
    return cv2.resize(np.ascontiguousarray(data.astronaut()[43:210, 139:306]), (180, 180))


def canvas(*faces: tuple[int, int, int]) -> np.ndarray:
    """A 200x400 grey frame with copies of :func:`face_image` of ``size`` at (``x``, ``y``)."""
    frame = np.full((200, 400, 3), 120, np.uint8)
    for x, y, size in faces:
        frame[y : y + size, x : x + size] = cv2.resize(face_image(), (size, size))
    return frame


ONE_FACE = canvas((10, 10, 180))
TWO_FACES = canvas((10, 10, 180), (210, 10, 180))
BIG_AND_SMALL = canvas((10, 10, 180), (250, 50, 90))
NO_FACE = np.full((200, 400, 3), 120, np.uint8)


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
    table = tmp_path / "samples.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def face_error(table: Path, output: Path, **params: object) -> str:
    with pytest.raises(MerecError) as info:
        run_face(table, output, FaceParams(**params))
    assert not output.exists(), "a failed stage must not leave its output directory"
    return str(info.value)


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
    assert "(sample a-1): frame(s) 2 are missing (frames 1-3 are needed)" in message


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
        skipped = run_face(table, tmp_path / "face", FaceParams(size=64))
    assert skipped.empty
    assert "sample a-1: 2 faces found" in caplog.text and "using the largest" in caplog.text
    both = load_npz(tmp_path / "face" / "a-1.npz")["transform"]
    alone = load_npz(tmp_path / "face" / "a-2.npz")["transform"]
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
    skipped = run_face(table, tmp_path / "face", FaceParams(size=64, on_error="skip"))
    report = pd.read_csv(tmp_path / "face" / "skipped.csv")
    assert report["sample"].tolist() == skipped["sample"].tolist() == ["a-2", "a-3", "b-2"]
    assert report["subject"].tolist() == ["t/a", "t/a", "t/b"]
    assert "no face" in report["reason"][0] and "faces of similar size" in report["reason"][1]
    assert "empty" in report["reason"][2]
    assert sorted(p.stem for p in sample_files(tmp_path / "face")) == ["a-1", "b-1"]


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
            skipped = run_face(table, output, FaceParams(size=64, on_error=on_error))
        except MerecError as exc:
            outcome[workers] = str(exc)
            assert not output.exists() and not list(tmp_path.glob(f".face-{workers}*"))  # nothing half-written
            continue
        arrays = {f.stem: load_npz(f)["frames"].tobytes() for f in sample_files(output)}
        outcome[workers] = (skipped["sample"].tolist(), arrays)
    assert outcome["1"] == outcome["2"]
    if on_error == "fail":
        assert "sample a-2: no face found" in outcome["1"]  # the first bad sample in table order


def test_skip_that_would_remove_a_whole_subject_fails_loudly(tmp_path: Path) -> None:
    """samples.csv fixes the fold set: skipping every clip of a subject would silently drop a fold."""
    table = clip_table(
        tmp_path, {"a-1": ("a", [ONE_FACE] * 3), "b-1": ("b", [NO_FACE] * 3), "b-2": ("b", [TWO_FACES] * 3)}
    )
    message = face_error(table, tmp_path / "face", on_error="skip")
    assert "would leave subject(s) t/b without any clip" in message
    assert "silently remove their LOSO folds" in message
    assert "b-1: sample b-1: no face" in message and "b-2: sample b-2: 2 faces" in message


def test_face_refuses_sample_ids_that_are_not_plain_names(tmp_path: Path) -> None:
    table = clip_table(tmp_path, {"a-1": ("a", [ONE_FACE] * 3)})
    samples = pd.read_csv(table)
    samples.loc[0, "sample"] = "../../escaped"
    samples.to_csv(table, index=False)
    message = face_error(table, tmp_path / "face")
    assert f"{table} line 2: sample id '../../escaped' is not a plain name" in message
    assert not (tmp_path / "escaped.npz").exists()


# ---------------------------------------------------------------------------------------------
# ingest: skipping never changes the fold set silently


def test_ingest_skip_that_drops_a_subject_is_reported(tmp_path: Path, caplog) -> None:
    rows = [*SAMM_ROWS[:4], *rows_of((9, "009_1_1", 1, "/", 3, "4", "Anger"), (9, "009_1_2", 9, 8, 7, "4", "Anger"))]
    root = make_samm(tmp_path / "samm", rows)
    spec = {"format": "samm", "root": str(root)}
    with pytest.raises(MerecError) as info:
        load_samples("samm", spec)
    assert "row 19" in str(info.value) and "row 20" in str(info.value)
    out = tmp_path / "interim" / "samples.csv"
    with caplog.at_level(logging.WARNING, logger="merec.datasets"):
        ingest("samm", spec, out, on_error="skip")
    assert "every usable row of subject samm/009 was skipped" in caplog.text
    samples = pd.read_csv(out, dtype=str)
    assert sorted(samples["fold"].unique()) == ["samm-006", "samm-007"]
    skipped = pd.read_csv(out.with_name("skipped.csv"), dtype=str, keep_default_na=False)
    assert skipped["sample"].tolist()[:2] == ["samm-009-009_1_1", "samm-009-009_1_2"]
    assert "'Apex Frame' is '/'" in skipped["reason"][0] and "onset 9 is after offset 7" in skipped["reason"][1]
    dropped = skipped[skipped["reason"].str.startswith("fold dropped: ")]
    assert dropped["subject"].tolist() == ["samm/009"] and dropped["row"].tolist() == [""]


def test_label_exclusion_of_a_whole_subject_is_not_a_dropped_fold(tmp_path: Path) -> None:
    rows = [*SAMM_ROWS[:4], *rows_of((9, "009_1_1", 1, 2, 3, "4", "Other"))]
    result = load_samples("samm", {"format": "samm", "root": str(make_samm(tmp_path, rows))}, on_error="skip")
    assert result.skipped["reason"].tolist() == ["label excluded: Other"]


def test_single_sample_subject_warning_names_the_sample(tmp_path: Path, caplog) -> None:
    rows = [*SAMM_ROWS[:4], *rows_of((9, "009_1_1", 1, 2, 3, "4", "Anger"))]
    with caplog.at_level(logging.WARNING, logger="merec.datasets"):
        load_samples("samm", {"format": "samm", "root": str(make_samm(tmp_path, rows))})
    assert "single sample: samm/009 (sample(s) samm-009-009_1_1)" in caplog.text


# ---------------------------------------------------------------------------------------------
# NaN or infinite flow


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_flow_fails_the_stage_naming_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: float
) -> None:
    frames = np.stack([ONE_FACE[:64, 10:74]] * 3)
    for sample in ("s-1", "s-2", "s-3"):
        save_npz(tmp_path / "magnify" / f"{sample}.npz", frames=frames, landmarks=np.full((68, 2), 32.0))
    real = features_stage.onset_flows

    def flows(clip: np.ndarray, flow: object) -> np.ndarray:
        out = real(clip, flow)
        if clip.dtype == np.uint8 and clip[0, 0, 0, 0] == 255:
            out[0, 1, 5, 5] = bad
        return out

    monkeypatch.setattr(features_stage, "onset_flows", flows)
    poisoned = load_npz(tmp_path / "magnify" / "s-2.npz")
    poisoned["frames"][0, 0, 0] = 255
    save_npz(tmp_path / "magnify" / "s-2.npz", **poisoned)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # two worker processes: the error crosses the pool
    params = FeatureParams(flow="farneback", roi_size=16, face_size=16)
    with pytest.raises(MerecError, match=r"sample s-2: optical flow contains NaN or infinite values"):
        features_stage.run(tmp_path / "magnify", tmp_path / "features", params)
    assert not (tmp_path / "features").exists()


# ---------------------------------------------------------------------------------------------
# checkpoints: tensors only, complete key/shape check


def stst(widths: tuple[int, ...] = (3, 5, 8)) -> torch.nn.Module:
    return build_model("stst", 3, {"apex": (3, 16, 16)}, {"widths": list(widths)})


class Exploit:
    """A pickle that creates ``marker`` when unpickled by a loader that runs pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_checkpoint_of_another_architecture_lists_the_mismatches(tmp_path: Path) -> None:
    save_state_dict(stst((4, 5, 8)), tmp_path / "other.pt")
    with pytest.raises(MerecError) as info:
        load_state_dict(stst(), tmp_path / "other.pt")
    message = str(info.value)
    assert f"{tmp_path / 'other.pt'}: checkpoint does not match STSTNet" in message
    assert "streams.0.0.weight: file (4, 3, 3, 3) vs model (3, 3, 3, 3)" in message
    assert "Use a checkpoint of the same architecture" in message
    partial = {f"module.{k}": v for k, v in stst().state_dict().items() if "classifier" not in k}
    torch.save(partial, tmp_path / "partial.pt")  # a DDP-style prefix is stripped, the missing keys listed
    with pytest.raises(MerecError, match="2 missing keys: classifier.weight, classifier.bias"):
        load_state_dict(stst(), tmp_path / "partial.pt")


def test_truncated_empty_and_missing_checkpoints(tmp_path: Path) -> None:
    save_state_dict(stst(), tmp_path / "model.pt")
    whole = (tmp_path / "model.pt").read_bytes()
    for name, content in (("half.pt", whole[: len(whole) // 2]), ("tail.pt", whole[:-40]), ("empty.pt", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(MerecError, match="not a readable torch checkpoint") as info:
            load_state_dict(stst(), tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and "re-create or re-copy it" in str(info.value)
    with pytest.raises(MerecError, match="checkpoint not found"):
        read_state_dict(tmp_path / "absent.pt")


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    torch.save({"weight": torch.zeros(1), "payload": Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(MerecError, match="not a readable torch checkpoint"):
        read_state_dict(tmp_path / "evil.pt")
    torch.save(stst(), tmp_path / "module.pt")  # a whole pickled module
    with pytest.raises(MerecError):
        read_state_dict(tmp_path / "module.pt")
    assert not marker.exists()


def test_pickled_objects_in_npz_archives_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    np.savez(tmp_path / "evil.npz", frames=np.array([Exploit(marker)], dtype=object))
    with pytest.raises(MerecError, match="cannot read this archive.*delete it and rerun"):
        load_npz(tmp_path / "evil.npz")
    assert not marker.exists()
    save_npz(tmp_path / "good.npz", x=np.arange(5000.0))
    whole = bytearray((tmp_path / "good.npz").read_bytes())
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    whole[len(whole) // 2 : len(whole) // 2 + 64] = bytes(64)
    (tmp_path / "flipped.npz").write_bytes(whole)
    for name in ("cut.npz", "flipped.npz"):
        with pytest.raises(MerecError, match=f"{name}: cannot read this archive"):
            load_npz(tmp_path / name)
    with pytest.raises(MerecError, match="absent.npz: file is missing; rerun the stage"):
        load_npz(tmp_path / "absent.npz")


def calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == dotted:
            found.append(node)
    return found


def keyword(call: ast.Call, name: str) -> str | None:
    return next((ast.unparse(k.value) for k in call.keywords if k.arg == name), None)


def test_every_loader_in_the_package_is_safe() -> None:
    """torch.load only with weights_only=True, np.load never with pickles, YAML only via safe_load."""
    sources = sorted((REPO / "merec").rglob("*.py")) + sorted((REPO / "workflow").rglob("*.py"))
    torch_loads = 0
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(REPO)
        for call in calls(tree, "torch.load"):
            torch_loads += 1
            assert keyword(call, "weights_only") == "True", f"{where}:{call.lineno}: torch.load without weights_only"
        for call in calls(tree, "np.load") + calls(tree, "numpy.load"):
            assert keyword(call, "allow_pickle") in (None, "False"), f"{where}:{call.lineno}: np.load with pickles"
        for name in ("yaml.load", "yaml.unsafe_load", "pickle.load", "pickle.loads", "pd.read_pickle"):
            assert not calls(tree, name), f"{where}: {name} can run code from a file"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "numpy", "pickle", "yaml", "joblib"):
                names = {alias.name for alias in node.names}
                assert not names & {"load", "loads", "unsafe_load"}, f"{where}: a bare load imported from {node.module}"
    assert torch_loads >= 1  # read_state_dict, the one place checkpoints are read


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
    del params["face"]
    with pytest.raises(MerecError, match="'face' is a required property"):
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
    assert main(["face", "--params", str(params), "--samples", "x.csv", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "merec face: error:" in err and "face.upsample: 9" in err and "Traceback" not in err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# atomic writers: never half-written, nothing left behind


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Boom(Exception):
    """Raised in the middle of a write."""


class FailsWhenWritten:
    """A cell whose text cannot be made: the CSV writer fails after writing the rows before it."""

    def __str__(self) -> str:
        raise Boom


@pytest.mark.parametrize(
    "write",
    [
        lambda p: save_npz(p, a=np.zeros(1000), b=np.array([lambda: 0], dtype=object)),  # fails after a
        lambda p: write_json(p, {"a": 1, "b": object()}),
        lambda p: write_csv(p, pd.DataFrame({"a": [1] * 5000 + [FailsWhenWritten()]})),
    ],
    ids=["npz", "json", "csv"],
)
def test_a_failing_writer_keeps_the_old_file_and_leaves_nothing(tmp_path: Path, write) -> None:
    target = tmp_path / "out.dat"
    target.write_text("previous, complete version")
    with pytest.raises((TypeError, ValueError, Boom)):
        write(target)
    assert target.read_text() == "previous, complete version"
    assert siblings(tmp_path) == ["out.dat"]


def test_atomic_path_and_dir_on_exceptions(tmp_path: Path) -> None:
    with pytest.raises(Boom), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("half")
        raise Boom
    assert siblings(tmp_path) == []
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "old.npz").write_text("complete")
    with pytest.raises(Boom), atomic_dir(tmp_path / "stage") as tmp:
        (tmp / "a.npz").write_text("half")
        raise Boom
    assert siblings(tmp_path) == ["stage"] and siblings(tmp_path / "stage") == ["old.npz"]
    with atomic_dir(tmp_path / "stage") as tmp:
        (tmp / "b.npz").write_text("new")
    assert siblings(tmp_path) == ["stage"] and siblings(tmp_path / "stage") == ["b.npz"]


def test_map_sample_dir_failing_on_one_sample_leaves_no_output(tmp_path: Path, monkeypatch) -> None:
    for k in range(4):
        save_npz(tmp_path / "in" / f"s{k}.npz", x=np.full(3, k))

    def transform(arrays: dict, sample: str) -> dict:
        if sample == "s2":
            raise MerecError(f"sample {sample}: bad")
        return arrays

    for workers in (1, 2):
        with pytest.raises(MerecError, match="sample s2: bad"):
            map_sample_dir(tmp_path / "in", tmp_path / "out", transform, "t", workers=workers)
        assert siblings(tmp_path) == ["in"]


WRITER = """
import sys, time
from pathlib import Path
from merec.io import atomic_dir, save_npz
import numpy as np
with atomic_dir(sys.argv[1]) as tmp:
    save_npz(Path(tmp) / "first.npz", x=np.zeros(3))
    (Path(tmp) / "predictions.csv").write_text("sample,predicted\\n")
    print("written", flush=True)
    time.sleep(60)
"""


def test_a_killed_writer_leaves_nothing_that_looks_done_and_the_next_write_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "folds" / "d-1"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stdout.readline().strip() == "written"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not target.exists()
    leftovers = siblings(tmp_path / "folds")
    assert len(leftovers) == 1 and leftovers[0].startswith(".d-1.") and leftovers[0].endswith(".part")
    assert [p.name for p in (tmp_path / "folds").glob("*/predictions.csv")] == ["predictions.csv"]  # a trap
    assert sample_files(tmp_path / "folds") == []  # hidden: never read as a sample
    with atomic_dir(target) as tmp:
        (tmp / "predictions.csv").write_text("complete")
    assert siblings(tmp_path / "folds") == ["d-1"]
    with atomic_path(tmp_path / "x.csv") as tmp:
        tmp.write_text("a")
    (tmp_path / ".x.csv.abcd1234.part").write_text("killed")
    (tmp_path / ".x.csv.keep").write_text("not ours")
    with atomic_path(tmp_path / "x.csv") as tmp:
        tmp.write_text("b")
    assert ".x.csv.abcd1234.part" not in siblings(tmp_path) and ".x.csv.keep" in siblings(tmp_path)


def test_written_files_have_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    write_json(tmp_path / "a.json", {"a": 1})
    with atomic_dir(tmp_path / "stage") as tmp:
        save_npz(tmp / "s.npz", x=np.zeros(1))
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "stage").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "stage" / "s.npz").stat().st_mode & 0o777 == 0o666 & ~mask


def test_identical_content_gives_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts do not embed write times or temporary names, so DVC hashes survive a rerun."""
    arrays = {"frames": np.arange(60, dtype=np.uint8).reshape(3, 4, 5), "names": np.array(["a", "bc"])}
    save_npz(tmp_path / "a.npz", **arrays)
    save_state_dict(stst(), tmp_path / "a.pt")
    later = time.time() + 86_400
    monkeypatch.setattr(time, "time", lambda: later)
    torch.manual_seed(0)
    model = stst()
    torch.manual_seed(0)
    save_state_dict(stst(), tmp_path / "b.pt")
    save_state_dict(model, tmp_path / "c.pt")
    save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "b.pt").read_bytes() == (tmp_path / "c.pt").read_bytes()
    loaded = load_npz(tmp_path / "b.npz")
    assert all(np.array_equal(loaded[key], value) and loaded[key].dtype == value.dtype for key, value in arrays.items())
    with pytest.raises(ValueError, match="allow_pickle"):
        save_npz(tmp_path / "c.npz", x=np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "c.npz").exists()


# ---------------------------------------------------------------------------------------------
# determinism of a training job run twice (the whole pipeline: tests/test_interruption.py)


def test_two_training_processes_write_identical_folds(tmp_path: Path) -> None:
    from tests.test_leakage import build_dataset

    root = build_dataset(tmp_path / "data", poisoned=False)
    params = tmp_path / "params.yaml"
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["train"].update(epochs=5, device="cpu")
    params.write_text(yaml.safe_dump(values))
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        command = [
            sys.executable, "-m", "merec", "train", "--params", str(params), "--samples", str(root / "samples.csv"),
            "--features", str(root / "features"), "--au-graph", str(root / "au_graph"), "--output", str(out),
            "--fold", "d-1",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(out)
    files = sorted(p.relative_to(outputs[0]) for p in outputs[0].rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"model.pt", "predictions.csv", "history.csv", "fold.json"}
    for relative in files:
        first, second = (out / relative for out in outputs)
        if relative.name == "fold.json":
            a, b = (json.loads(p.read_text()) for p in (first, second))
            a.pop("train_seconds"), b.pop("train_seconds")
            assert a == b
        else:
            assert first.read_bytes() == second.read_bytes(), relative
