"""``merec predict``: a bundle of the tiny built project run on recordings made from the embedded data."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from array import array
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merec.bundle import export, load_bundle
from merec.cli import main
from merec.config import load_params
from merec.errors import MerecError
from merec.io import load_npz
from merec.predict import PredictOptions, predict
from merec.predict.pipeline import interval_frames, read_annotation
from merec.predict.report import reduced
from merec.predict.source import Source, open_source
from merec.shards import read_stage, stage_samples
from merec.train import class_probabilities, model_inputs, sample_inputs, to_tensors
from tests.helpers.images import canvas

VIDEO = "001_1"  # a long video of the tiny project's synth_lv


@pytest.fixture(scope="module")
def bundle(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny project's recogniser on every subject, exported (the built project is only read)."""
    folder = tmp_path_factory.mktemp("bundle") / "model.merec"
    return export(built / "results" / "synth", folder, load_params(built / "params.yaml"))


def frames_of(built: Path, video: str = VIDEO) -> list[np.ndarray]:
    folder = built / "data" / "raw" / "synth_lv" / "SAMM_longvideos" / video
    return [cv2.imread(str(path)) for path in sorted(folder.glob("*.jpg"))]


def write_video(
    path: Path, frames: list[np.ndarray], size: tuple[int, int], face_px: int | None = None, fps: float = 30
) -> Path:
    """An mp4 (MPEG-4 part 2) of BGR ``frames``, each scaled to ``face_px`` and centred on a grey
    ``size`` (width, height) canvas (None: the frames are that size already)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    width, height = size
    for frame in frames:
        if face_px is None:
            writer.write(frame)
            continue
        picture = np.full((height, width, 3), 90, np.uint8)
        x, y = (width - face_px) // 2, (height - face_px) // 2
        picture[y : y + face_px, x : x + face_px] = cv2.resize(frame, (face_px, face_px))
        writer.write(picture)
    writer.release()
    return path


def annotation(built: Path) -> Path:
    return built / "data" / "interim" / "synth_lv" / "intervals.csv"


def test_a_folder_of_frames_is_spotted_exactly_as_the_pipeline_spotted_it(built: Path, bundle: Path, tmp_path):
    folder = built / "data" / "raw" / "synth_lv" / "SAMM_longvideos" / VIDEO
    summary = predict(folder, bundle, tmp_path / "out", PredictOptions(fps=30, annotation=annotation(built)))
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    pipeline = pd.read_csv(built / "results" / "synth_lv" / "spotting" / "intervals.csv", dtype={"video": str})
    pipeline = pipeline[(pipeline["video"] == VIDEO) & (pipeline["seed"] == 0)]
    ours = table[["type", "onset", "offset", "apex"]].sort_values(["type", "onset"]).to_numpy().tolist()
    theirs = pipeline[["type", "onset", "offset", "peak"]].sort_values(["type", "onset"]).to_numpy().tolist()
    assert ours == theirs  # same tracking, flow, curve and threshold as the spot stages
    micro = table[table["type"] == "micro"]
    classes = summary["classes"]
    assert set(micro["class"]) <= set(classes) and (table[table["type"] == "macro"]["class"].isna()).all()
    assert np.allclose(micro[[f"p_{c}" for c in classes]].sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(table["onset_s"], (table["onset"] - 1) / 30, atol=1e-4)
    assert summary["frames"] == 294 and summary["face_gaps"] == [] and "spotting" in summary["scores"]
    release = read_annotation(built / "data" / "raw" / "synth_lv", VIDEO)  # the release as downloaded
    assert release.equals(read_annotation(annotation(built), VIDEO)) and release["emotion"].notna().any()
    curve = pd.read_csv(tmp_path / "out" / "curve.csv")
    assert len(curve) == 294 and {"seconds", "face", "curve_micro", "curve_macro"} <= set(curve.columns)


def test_a_known_interval_is_recognised_as_the_training_path_saw_it(built: Path, bundle: Path, tmp_path):
    samples = pd.read_csv(built / "data" / "interim" / "synth" / "samples.csv", dtype=str)
    row = samples.iloc[0]
    options = PredictOptions(fps=100, onset=int(row["onset"]), apex=int(row["apex"]), offset=int(row["offset"]))
    predict(built / row["frames_dir"], bundle, tmp_path / "out", options)
    ours = pd.read_csv(tmp_path / "out" / "predictions.csv")
    loaded = load_bundle(bundle)
    features = load_npz(stage_samples(read_stage(built / "data" / "processed" / "synth" / "features"))[row["sample"]])
    values = sample_inputs(features)
    batch = to_tensors({k: values[k][None] for k in model_inputs(loaded.model)}, np.array([0]), loaded.input_scales,
                       "cpu")  # fmt: skip
    if loaded.adjacency is not None:
        import torch

        batch["adjacency"] = torch.from_numpy(loaded.adjacency).float()
    expected = class_probabilities(loaded.model, batch)[0]
    got = ours[[f"p_{c}" for c in loaded.classes]].to_numpy()[0]
    assert len(ours) == 1 and np.allclose(got, expected, atol=1e-4)  # face, interpolate, magnify, features: the stages'
    assert not (tmp_path / "out" / "curve.csv").exists()  # no spotting


def test_an_mp4_gives_a_page_a_browser_renders_with_one_row_per_interval(built: Path, bundle: Path, tmp_path):
    video = write_video(tmp_path / f"{VIDEO}.mp4", frames_of(built), (640, 360), 300)
    summary = predict(video, bundle, tmp_path / "out", PredictOptions(annotation=annotation(built)))
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    truth = pd.read_csv(annotation(built), dtype={"video": str})
    macro = truth[(truth["video"] == VIDEO) & (truth["type"] == "macro")].iloc[0]
    found = table[table["type"] == "macro"]
    assert summary["fps"] == 30 and summary["size"] == [640, 360] and len(table) == sum(summary["intervals"].values())
    assert ((found["onset"] <= macro["apex"]) & (found["offset"] >= macro["apex"])).any()  # the macro-expression
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<tr class="interval"') == len(table) and "<img" in html and 'src="http' not in html
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        if os.environ.get("MEREC_REQUIRE_BROWSER"):
            pytest.fail("MEREC_REQUIRE_BROWSER is set but no Chromium is installed (apt-get install chromium)")
        pytest.skip("no Chromium to open the page in (apt-get install chromium)")
    shown = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--dump-dom", (tmp_path / "out" / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert f'data-ready="{len(table)}"' in shown.stdout  # the page's script ran to its end
    assert shown.stdout.count('class="interval"') == len(table)
    assert not re.findall(r"CONSOLE.*", shown.stderr)  # no errors, nor any other console output


def test_large_portrait_and_two_person_videos(built: Path, bundle: Path, tmp_path, caplog):
    frames = frames_of(built)[:120]
    portrait = predict(write_video(tmp_path / "portrait.mp4", frames, (360, 640), 320), bundle, tmp_path / "p")
    full_hd = predict(write_video(tmp_path / "hd.mp4", frames, (1920, 1080), 900), bundle, tmp_path / "hd")
    for summary in (portrait, full_hd):
        assert summary["face_gaps"] == [] and summary["recognised"] == summary["intervals"]["micro"] > 0
    smaller = [np.pad(cv2.resize(f, (220, 220)), ((10, 10), (0, 0), (0, 0))) for f in frames]
    pair = [np.concatenate([cv2.resize(f, (240, 240)), g], 1) for f, g in zip(frames, smaller, strict=True)]
    with caplog.at_level(logging.WARNING, logger="merec"):
        two = predict(write_video(tmp_path / "two.mp4", pair, (460, 240)), bundle, tmp_path / "two")
    assert two["face_gaps"] == [] and "faces found" in caplog.text  # the largest is tracked, with a warning


def test_a_face_that_leaves_the_frame_is_a_gap_never_spotted(built: Path, bundle: Path, tmp_path):
    frames = frames_of(built)
    away = [np.full_like(f, 90) if 100 <= n < 160 else f for n, f in enumerate(frames, start=1)]
    summary = predict(write_video(tmp_path / "away.mp4", away, (640, 360), 300), bundle, tmp_path / "out")
    ((first, last),) = summary["face_gaps"]
    assert abs(first - 100) <= 30 and abs(last - 159) <= 30  # found again at the next face check
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert not ((table["onset"] > first) & (table["offset"] < last)).any()  # nothing spotted inside the gap
    curve = pd.read_csv(tmp_path / "out" / "curve.csv")
    assert not curve["face"][first - 1 : last].any() and curve["curve_micro"][first - 1 : last].isna().all()


def test_bad_inputs_are_errors_that_say_what_to_do_and_leave_nothing(built: Path, bundle: Path, tmp_path):
    out = tmp_path / "out"
    grey = [np.full((200, 400, 3), 120, np.uint8)] * 60
    with pytest.raises(MerecError, match="no face found on any of its 60 frames"):
        predict(write_video(tmp_path / "empty.mp4", grey, (400, 200), 200), bundle, out)
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(MerecError, match="cannot open this file as a video"):
        predict(tmp_path / "broken.mp4", bundle, out)
    folder = built / "data" / "raw" / "synth_lv" / "SAMM_longvideos" / VIDEO
    with pytest.raises(MerecError, match="no frame rate; give it with --fps"):
        predict(folder, bundle, out)
    with pytest.raises(MerecError, match="needs both --onset and --offset"):
        predict(folder, bundle, out, PredictOptions(fps=30, onset=10))
    with pytest.raises(MerecError, match="interval 290-400 lies outside its frames 1-294"):
        predict(folder, bundle, out, PredictOptions(fps=30, onset=290, offset=400))
    with pytest.raises(MerecError, match="--detect-max-side must be at least 64"):
        predict(folder, bundle, out, PredictOptions(fps=30, detect_max_side=0))
    bad = tmp_path / "bad.csv"
    bad.write_text("start,end\n1,2\n")
    with pytest.raises(MerecError, match="no column onset, offset"):
        predict(folder, bundle, out, PredictOptions(fps=30, annotation=bad))
    with pytest.raises(MerecError, match="no SAMM Long Videos, CAS.ME.\\^2 or CAS.ME.\\^3 annotation file in it"):
        predict(folder, bundle, out, PredictOptions(fps=30, annotation=tmp_path))
    with pytest.raises(MerecError, match="not a merec bundle"):
        predict(folder, tmp_path, out, PredictOptions(fps=30))
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nothing half-written
    (out / "notes.txt").parent.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(MerecError, match="holds other files .no summary.json.*choose a new folder"):
        predict(folder, bundle, out, PredictOptions(fps=30, onset=120, offset=126))
    assert (out / "notes.txt").read_text() == "mine"  # a folder of other files is never replaced


def test_the_command_line_runs_a_known_interval_and_reports_errors(built: Path, bundle: Path, tmp_path, capsys):
    folder = built / "data" / "raw" / "synth_lv" / "SAMM_longvideos" / VIDEO
    code = main(["predict", str(folder), "--model", str(bundle), "--output", str(tmp_path / "o"), "--fps", "30",
                 "--onset", "120", "--offset", "126"])  # fmt: skip
    table = pd.read_csv(tmp_path / "o" / "predictions.csv")
    assert code == 0 and len(table) == 1 and 120 < table["apex"].iloc[0] <= 126  # apex estimated from the flow
    assert main(["predict", str(tmp_path / "missing.mp4"), "--model", str(bundle), "--output", "x"]) == 2
    assert "no such video file or frame folder" in capsys.readouterr().err


def test_interval_frames_hold_only_open_intervals_and_fill_unreadable_frames() -> None:
    frames = {n: np.full((2, 2, 3), n, np.uint8) for n in range(1, 21)}

    class Fake(Source):
        def frames(self):
            for number in range(1, 21):
                yield number, None if number == 5 else frames[number]

    source = Fake(Path("fake"), 10.0, 20, (2, 2), True)
    got = dict(interval_frames(source, [(8, 12), (3, 6), (10, 11)]))
    assert [f[0, 0, 0] for f in got[1]] == [3, 4, 4, 6]  # frame 5 unreadable: frame 4 again
    assert [f[0, 0, 0] for f in got[0]] == [8, 9, 10, 11, 12] and len(got[2]) == 2
    with pytest.raises(MerecError, match="interval.s. 18-25 end after the last frame read"):
        dict(interval_frames(source, [(18, 25)]))


def test_variable_frame_rate_is_reported_and_times_come_from_the_timestamps(tmp_path, caplog) -> None:
    source = Source(Path("v.mp4"), 30.0, 5, (2, 2), True)
    source.times = array("d", [0.0, 1 / 30, 2 / 30, 3 / 30, 4 / 30])
    assert not source.check_timing()
    source.times = array("d", [0.0, 1 / 30, 3 / 30, 4 / 30, 6 / 30])
    with caplog.at_level(logging.WARNING, logger="merec"):
        assert source.check_timing()
    assert "variable frame rate" in caplog.text and source.seconds(5) == pytest.approx(0.2)


def test_the_chart_keeps_every_peak_of_a_long_curve() -> None:
    values = np.zeros(100_000)
    values[[123, 54_321, 99_999]] = [5.0, 7.0, 3.0]
    values[60_000:60_010] = np.nan
    _, kept = reduced(np.arange(len(values)) / 30, values, points=500)
    assert len(kept) == 500 and set(kept[kept > 0]) == {5.0, 7.0, 3.0}


def test_open_source_reads_the_rate_size_and_count_of_a_video(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", [canvas((10, 10, 180))] * 12, (400, 200), 180, fps=25)
    source = open_source(video)
    assert (source.fps, source.size, source.frame_count, source.name) == (25.0, (400, 200), 12, "v")
    assert sum(1 for _ in source.frames()) == 12 and source.seconds(3) == pytest.approx(2 / 25)  # timestamps
    faster = open_source(video, fps=200)  # a high-speed recording stored at 25 fps: --fps sets the times
    assert sum(1 for _ in faster.frames()) == 12 and faster.seconds(3) == pytest.approx(2 / 200)


def test_an_annotation_csv_needs_only_onset_and_offset(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("onset,offset\n10,20\n40,45\n")
    table = read_annotation(tmp_path / "a.csv", "v")
    assert table[["video", "type", "onset", "offset"]].to_numpy().tolist() == [["v", "micro", 10, 20],
                                                                                ["v", "micro", 40, 45]]  # fmt: skip
    assert table["emotion"].isna().all()


def test_a_bundle_with_the_learned_spotter_scores_as_the_spotter_does_on_the_stage_maps(built: Path, tmp_path):
    from merec.spotting import learned
    from merec.spotting.features import load_maps
    from merec.spotting.settings import SpotParams
    from merec.spotting.stage import train_spotter

    params = load_params(built / "params.yaml")
    params["spot"]["method"] = "learned"
    lv = built / "data" / "interim" / "synth_lv"
    train_spotter(lv / "videos.csv", [lv / "spot_features"], tmp_path / "spotter", SpotParams.from_params(params))
    with pytest.raises(MerecError, match="name the learned spotter to bundle"):
        export(built / "results" / "synth", tmp_path / "b", params)
    bundle = export(built / "results" / "synth", tmp_path / "model.merec", params, tmp_path / "spotter")
    summary = predict(lv.parents[2] / "data/raw/synth_lv/SAMM_longvideos" / VIDEO, bundle, tmp_path / "out",
                      PredictOptions(fps=30))  # fmt: skip
    assert summary["spotting"] == "learned" and summary["spot_threshold_p"] == params["spot"]["p"]["learned"]
    curve = pd.read_csv(tmp_path / "out" / "curve.csv")
    archive = stage_samples(read_stage(lv / "spot_features"))[VIDEO]
    arrays = load_npz(archive)
    spotters = load_bundle(bundle).spotters
    for kind in ("micro", "macro"):  # the streamed maps give the curve the stage's own maps give
        data = learned.load_video(VIDEO, arrays, load_maps(archive, kind), kind, pd.DataFrame(columns=["type"]))
        expected = learned.curve(spotters[kind], data, "cpu")
        assert np.allclose(curve[f"curve_{kind}"], expected, atol=1e-4, equal_nan=True)
