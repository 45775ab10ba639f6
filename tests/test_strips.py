"""Frame strips for the report: sample choice, the PNGs and their index, clear errors, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from merec.cli import main
from merec.errors import MerecError
from merec.io import save_npz
from merec.strips import StripParams, choose_samples, frame_indices, run
from tests.helpers import REPO
from tests.helpers.stages import write_stage

CLASSES = ["negative", "positive", "surprise"]
# sample -> (subject, label); ids deliberately not in class order
SAMPLES = {
    "s2_b": ("s2", "positive"),
    "s1_c": ("s1", "negative"),
    "s1_a": ("s1", "positive"),
    "s2_a": ("s2", "negative"),
    "s1_b": ("s1", "surprise"),
    "s3_a": ("s3", "surprise"),
}


def clip(seed: int, n_frames: int = 5, size: int = 16) -> np.ndarray:
    """A (T, H, W, 3) uint8 clip: a noise image shifted one pixel more per frame."""
    base = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return np.stack([np.roll(base, t, axis=1) for t in range(n_frames)])


def make_stages(root: Path, n_frames: int = 5) -> tuple[Path, Path, Path]:
    """samples.csv + classes.json, and interpolate/magnify folders in the stages' npz format."""
    interim = root / "interim"
    interim.mkdir(parents=True)
    rows = [{"sample": s, "subject": subj, "fold": subj, "label": label} for s, (subj, label) in SAMPLES.items()]
    pd.DataFrame(rows).to_csv(interim / "samples.csv", index=False)
    (interim / "classes.json").write_text(json.dumps({"classes": CLASSES}))
    positions = np.linspace(10.0, 14.0, n_frames)
    interpolated, magnified = {}, {}
    for index, sample in enumerate(SAMPLES):
        frames = clip(index, n_frames)
        landmarks = np.zeros((68, 2), np.float32)
        interpolated[sample] = {"frames": frames, "positions": positions, "landmarks": landmarks}
        moved = np.clip(frames.astype(int) + np.arange(n_frames)[:, None, None, None] * 3, 0, 255)
        magnified[sample] = {"frames": moved.astype(np.uint8), "positions": positions}
    write_stage(interim / "interpolate", "interpolate", interpolated, shards=2)
    write_stage(interim / "magnify", "magnify", magnified, shards=2)
    return interim / "samples.csv", interim / "interpolate", interim / "magnify"


def test_choice_is_one_per_class_by_id_then_round_robin() -> None:
    table = pd.DataFrame([{"sample": s, "subject": subj, "label": label} for s, (subj, label) in SAMPLES.items()])
    available = set(SAMPLES)
    assert [r["sample"] for r in choose_samples(table, CLASSES, available, 3)] == ["s1_c", "s1_a", "s1_b"]
    assert [r["sample"] for r in choose_samples(table, CLASSES, available, 2)] == ["s1_c", "s1_a"]
    assert [r["sample"] for r in choose_samples(table, CLASSES, available, 5)] == [
        *("s1_c", "s1_a", "s1_b"),
        *("s2_a", "s2_b"),
    ]
    assert len(choose_samples(table, CLASSES, available, 99)) == len(SAMPLES)
    # a sample missing from a stage folder is passed over; its class still gets the next one
    picked = choose_samples(table, CLASSES, available - {"s1_c"}, 3)
    assert [r["sample"] for r in picked] == ["s2_a", "s1_a", "s1_b"]
    assert picked[0] == {"sample": "s2_a", "subject": "s2", "label": "negative"}


def test_frame_indices_span_onset_to_apex() -> None:
    assert frame_indices(13, 7).tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert frame_indices(5, 7).tolist() == [0, 1, 2, 3, 4]
    assert frame_indices(5, 0).tolist() == [0, 1, 2, 3, 4]
    assert frame_indices(10, 2).tolist() == [0, 9]


def test_strips_are_written_with_an_index(tmp_path: Path) -> None:
    samples, interpolated, magnified = make_stages(tmp_path)
    out = tmp_path / "results" / "strips"
    index = run(samples, interpolated, magnified, out, StripParams.from_mapping({"strips": 3, "frames": 3}))
    assert index["sample"].tolist() == ["s1_c", "s1_a", "s1_b"]
    assert index["label"].tolist() == CLASSES
    assert sorted(p.name for p in out.iterdir()) == ["s1_a.png", "s1_b.png", "s1_c.png", "strips.csv"]
    written = pd.read_csv(out / "strips.csv", dtype=str)
    assert written.columns.tolist() == ["sample", "subject", "label", "file", "frames"]
    assert written["frames"].tolist() == ["0 2 4"] * 3
    for file in written["file"]:
        data = (out / file).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert not [p for p in out.parent.iterdir() if p.name != "strips"]  # no temporary leftovers
    # deterministic: a rerun writes the same bytes
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    run(samples, interpolated, magnified, out, StripParams.from_mapping({"strips": 3, "frames": 3}))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_strip_image_has_three_rows(tmp_path: Path) -> None:
    import matplotlib.image

    samples, interpolated, magnified = make_stages(tmp_path)
    out = tmp_path / "strips"
    run(samples, interpolated, magnified, out, StripParams.from_mapping({"strips": 1, "frames": 0}))
    image = matplotlib.image.imread(out / "s1_c.png")
    height, width = image.shape[:2]
    assert width > height  # five frames side by side, three rows


@pytest.mark.parametrize("missing", ["interpolate", "magnify"])
def test_missing_stage_folder_is_named(tmp_path: Path, missing: str) -> None:
    samples, interpolated, magnified = make_stages(tmp_path)
    folder = {"interpolate": interpolated, "magnify": magnified}[missing]
    gone = folder.with_name(f"{missing}-moved")
    folder.rename(gone)
    out = tmp_path / "strips"
    with pytest.raises(MerecError, match=rf"the {missing} stage's output is not complete .*{folder}"):
        run(samples, interpolated, magnified, out, StripParams.from_mapping())
    assert not out.exists()


def test_missing_samples_and_no_overlap_are_errors(tmp_path: Path) -> None:
    samples, interpolated, magnified = make_stages(tmp_path)
    with pytest.raises(MerecError, match="samples table is missing"):
        run(tmp_path / "none.csv", interpolated, magnified, tmp_path / "strips", StripParams.from_mapping())
    write_stage(magnified, "magnify", {}, shards=2)
    with pytest.raises(MerecError, match="has frames in both"):
        run(samples, interpolated, magnified, tmp_path / "strips", StripParams.from_mapping())


def test_a_failure_keeps_the_previous_strips(tmp_path: Path) -> None:
    samples, interpolated, magnified = make_stages(tmp_path)
    out = tmp_path / "strips"
    run(samples, interpolated, magnified, out, StripParams.from_mapping({"strips": 2}))
    before = sorted(p.name for p in out.iterdir())
    (path,) = magnified.glob("shard-*/s1_a.npz")
    save_npz(path, frames=clip(0, n_frames=4))  # frame count differs from interpolate
    with pytest.raises(MerecError, match="differ; rerun the magnify stage"):
        run(samples, interpolated, magnified, out, StripParams.from_mapping({"strips": 2}))
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interim", "strips"]


def test_params_are_checked() -> None:
    assert StripParams.from_mapping({"strips": 2}) == StripParams.from_mapping({"strips": 2})
    for bad in ({"strips": 0}, {"strips": 2, "frames": 1}, {"strips": 2, "diff_gain": 0}):
        with pytest.raises(MerecError, match="report\\."):
            StripParams.from_mapping(bad)
    with pytest.raises(MerecError, match="unknown key"):
        StripParams.from_mapping({"strips": 2, "colour": "red"})


def test_strips_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples, interpolated, magnified = make_stages(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["report"] = {"strips": 2, "frames": 0}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out, log = tmp_path / "strips", tmp_path / "logs" / "strips.log"
    command = ["strips", "--params", str(params_file), "--samples", str(samples), "--input", str(interpolated)]
    assert main([*command, "--magnified", str(magnified), "--output", str(out), "--log", str(log)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["s1_a.png", "s1_c.png"]
    assert "wrote 2 frame strip(s)" in log.read_text()
    missing = tmp_path / "nowhere"
    assert main([*command, "--magnified", str(missing), "--output", str(out)]) == 2
    assert "the magnify stage's output is not complete" in capsys.readouterr().err
