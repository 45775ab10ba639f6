"""The spotting stage: streamed per-frame features, peaks and intervals, the learned spotter, the
evaluation with its random-interval control, and the controls that guard the claim of spotting."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from merec.datasets.long_ingest import read_intervals, read_videos
from merec.datasets.long_ingest import run as ingest
from merec.datasets.settings import IngestParams
from merec.errors import MerecError
from merec.io import load_npz, read_image
from merec.spotting import learned
from merec.spotting.features import SpotFeatureParams, flow_steps, gaps, load_maps, video_features
from merec.spotting.features import run as features
from merec.spotting.peaks import Spotted, baseline_curve, nan_smooth, spot, threshold
from merec.spotting.settings import SpotParams
from merec.spotting.stage import evaluate, random_control, read_curves, score_all, score_baseline, spot_videos
from merec.synth.long_videos import LongVideoParams, generate_long_videos

TINY = {"subjects": 3, "duration_s": [6.0, 7.0], "micro_per_video": [2, 2], "macro_per_video": [1, 1],
        "frame_size": 128, "macro_duration_s": [0.8, 1.2]}  # fmt: skip
# No distractors and a clear micro-motion: any working spotter finds most expressions here.
CLEAN = {**TINY, "talk_per_minute": 0.0, "blink_px": 0.0, "head_motion_px": 0.0, "head_rotation_deg": 0.0,
         "illumination_drift": 0.0, "micro_amplitude_px": 2.0, "annotation_jitter": 0}  # fmt: skip


def build(root: Path, synth: dict, shards: tuple[int, ...] = (0,)) -> Path:
    """A generated long-video dataset, ingested, with its spotting features; returns videos.csv."""
    generate_long_videos(root / "raw", LongVideoParams.from_mapping(synth))
    videos = root / "videos.csv"
    ingest("lv", {"format": "samm_lv", "root": str(root / "raw")}, videos,
           IngestParams.from_mapping({"shards": list(shards)}))  # fmt: skip
    for shard in shards:
        features(root / "videos" / f"shard-{shard}.json", videos, root / "features" / f"shard-{shard}.json",
                 SpotFeatureParams.from_mapping({}))  # fmt: skip
    return videos


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("clean"), CLEAN, shards=(0, 1))


# ------------------------------------------------------------------------------------------ peaks


def test_threshold_is_mean_plus_p_of_the_range_over_finite_values() -> None:
    curve = np.array([0.0, 1.0, np.nan, 3.0, 0.0])
    assert threshold(curve, 0.5) == pytest.approx(1.0 + 0.5 * (3.0 - 1.0))
    assert np.isnan(threshold(np.full(4, np.nan), 0.5))


def test_peaks_become_peak_plus_minus_k_and_overlaps_merge() -> None:
    curve = np.zeros(60)
    curve[10], curve[30], curve[32] = 5.0, 4.0, 6.0  # 30 and 32: closer than k
    found = spot(curve, k=3, p=0.5, first_frame=1)
    # peaks at index 10 and 32 (30 is within k of a higher one): frames 11 +- 3 and 33 +- 3
    assert found == [Spotted(8, 14, 11, 5.0), Spotted(30, 36, 33, 6.0)]
    curve[38] = 5.5  # 6 frames after 32: its interval overlaps 32's, so they merge
    merged = spot(curve, k=3, p=0.5, first_frame=1)
    assert merged[-1] == Spotted(30, 42, 33, 6.0)


def test_frames_without_a_score_never_peak_and_intervals_stay_in_the_video() -> None:
    curve = np.full(20, np.nan)
    curve[0], curve[5] = 2.0, 1.0
    found = spot(curve, k=4, p=0.0, first_frame=100)
    assert found[0] == Spotted(100, 104, 100, 2.0)  # clipped at the first frame
    assert all(np.isfinite(curve[s.peak - 100]) for s in found)
    assert spot(np.full(10, np.nan), 2, 0.5) == []


def test_nan_smooth_averages_only_the_frames_with_a_score() -> None:
    values = np.array([1.0, np.nan, 3.0, 3.0])
    smoothed = nan_smooth(values, 3)
    assert smoothed[0] == pytest.approx(1.0) and np.isnan(smoothed[1]) and smoothed[2] == pytest.approx(3.0)


def test_the_baseline_curve_peaks_on_a_burst_and_its_contrast_cancels_slow_motion() -> None:
    n, k = 200, 4
    rois = np.ones((n, 2), np.float32)
    rois[:, 1] += np.linspace(0, 3, n)  # a slow drift in one region
    rois[100:104, 0] += 4.0  # a burst as short as a micro-expression in the other
    valid = np.ones(n, bool)
    curve = baseline_curve(rois, valid, k, contrast=True)
    assert abs(int(np.nanargmax(curve)) - 102 - k // 2) <= k
    assert np.nanmax(curve[:80]) < 0.2 * np.nanmax(curve)  # the drift alone does not peak
    valid[100:104] = False
    assert np.nanmax(baseline_curve(rois, valid, k, True)[95:110]) < np.nanmax(curve)  # no flow, no score


# --------------------------------------------------------------------------------------- features


def test_features_have_one_row_per_frame_for_both_flow_steps(clean: Path) -> None:
    videos = read_videos(clean)
    row = videos.iloc[0]
    archive = clean.parent / "features" / f"shard-{int(row['shard'])}" / f"{row['video']}.npz"
    arrays = load_npz(archive)
    steps = flow_steps(30.0, SpotFeatureParams.from_mapping({}))
    assert steps == {"micro": 4, "macro": 22}
    n = int(row["frames"])
    assert arrays["rois_micro"].shape == (n, 5) and arrays["face"].all() and arrays["valid_micro"][: n - 4].all()
    assert not arrays["valid_micro"][n - 4 :].any() and arrays["valid_macro"].sum() == n - 22
    maps = load_maps(archive, "micro")
    assert maps.shape == (n, 3, 32, 32) and maps.dtype == np.float16
    assert not np.asarray(maps[n - 4 :]).any()  # frames without a flow hold zeros


def test_a_missing_and_a_corrupt_frame_are_skipped_and_reported(tmp_path: Path, caplog) -> None:
    root = tmp_path / "d"
    videos = build(root, {**TINY, "subjects": 2})
    folder = Path(read_videos(videos)["folder"].iloc[0])
    files = sorted(folder.iterdir())
    files[50].unlink()
    files[80].write_bytes(files[80].read_bytes()[:200])  # truncated
    ingest("lv", {"format": "samm_lv", "root": str(root / "raw")}, videos, IngestParams.from_mapping({"shards": [0]}))
    features(root / "videos" / "shard-0.json", videos, root / "again" / "shard-0.json",
             SpotFeatureParams.from_mapping({}))  # fmt: skip
    log = caplog.text
    assert "frame 51 is missing" in log and "frame 81" in log and "cannot be read" in log
    arrays = load_npz(root / "again" / "shard-0" / f"{folder.name}.npz")
    assert not arrays["face"][[50, 80]].any() and not arrays["valid_micro"][[46, 50, 76, 80]].any()
    assert arrays["valid_micro"][60] and gaps(arrays["face"], arrays["frame_numbers"]) == [(51, 51), (81, 81)]


def test_a_video_shorter_than_the_flow_window_and_one_without_a_face_are_errors(tmp_path: Path) -> None:
    root = tmp_path / "d"
    videos = build(root, {**TINY, "subjects": 2})
    table = read_videos(videos)
    params = SpotFeatureParams.from_mapping({})
    frames = {n + 1: path for n, path in enumerate(sorted(Path(table["folder"].iloc[0]).iterdir()))}
    short = [(n, read_image(frames[n])) for n in range(1, 11)]
    with pytest.raises(MerecError, match="video v: 10 frames, shorter than the flow window .23 frames at 30 fps"):
        video_features("v", iter(short), 30.0, params, tmp_path / "v.npz", n=10)
    with pytest.raises(MerecError, match="video v: 10 frames, shorter than the flow window"):  # streamed: counted
        video_features("v", iter(short), 30.0, params)
    blank = Path(table["folder"].iloc[1])
    for path in blank.iterdir():
        cv2.imwrite(str(path), np.zeros((128, 128, 3), np.uint8))
    ingest("lv", {"format": "samm_lv", "root": str(root / "raw")}, videos, IngestParams.from_mapping({"shards": [0]}))
    with pytest.raises(MerecError, match=f"video {blank.name}: no face found on any of its"):
        features(root / "videos" / "shard-0.json", videos, root / "g" / "shard-0.json", params)
    assert not (root / "g" / "shard-0").exists() and not (root / "g" / "shard-0.json").exists()  # nothing half-written


# ----------------------------------------------------------------------------------------- learned


def test_pseudo_labels_mark_the_frames_whose_window_overlaps_an_interval() -> None:
    intervals = pd.DataFrame({"onset": [11], "offset": [14]})
    labels = learned.pseudo_labels(20, first=1, k=3, intervals=intervals)
    # frames i .. i+2 overlap frames 11..14 (indices 10..13) for i in 8..13
    assert np.flatnonzero(labels).tolist() == [8, 9, 10, 11, 12, 13]


def test_the_network_scores_each_map_and_training_lowers_the_loss() -> None:
    rng = np.random.default_rng(0)
    n = 200
    maps = rng.normal(0, 1, (n, 3, 32, 32)).astype(np.float16)
    labels = np.zeros(n, np.float32)
    labels[::5] = 1.0
    maps[labels > 0, :, 8:16, 8:16] += 4.0  # positives carry a patch of motion
    data = learned.VideoData("v", maps, np.ones(n, bool), labels, np.ones(3, np.float32), 4)
    model = learned.SoftNet(32)
    assert model(torch.zeros(5, 3, 32, 32)).shape == (5,)
    options = SpotParams.from_mapping({}).learned

    def loss(m: learned.SoftNet) -> float:
        with torch.no_grad():
            scores = m(torch.from_numpy(maps.astype(np.float32)))
        return float(torch.mean((scores - torch.from_numpy(labels)) ** 2))

    trained = learned.train([data], options, seed=0, map_size=32, device="cpu")
    assert loss(trained) < 0.5 * loss(learned.SoftNet(32))
    again = learned.train([data], options, seed=0, map_size=32, device="cpu")
    np.testing.assert_array_equal(learned.curve(trained, data, "cpu"), learned.curve(again, data, "cpu"))


# ---------------------------------------------------------------------------------- stage and controls


def test_the_random_control_keeps_counts_and_lengths_and_scores_low() -> None:
    videos = pd.DataFrame({"video": ["a"], "first": [1], "last": [1000]})
    truth = pd.DataFrame({"video": ["a"] * 3, "onset": [100, 400, 700], "offset": [110, 410, 710],
                          "type": ["micro"] * 3})  # fmt: skip
    exact = truth.copy()
    control = random_control(exact, truth, videos, 50, 0)
    assert control["micro"]["f1_mean"] < 0.2 and control["draws"] == 50
    assert control["micro"]["f1_ci95"][0] <= control["micro"]["f1_mean"] <= control["micro"]["f1_ci95"][1]


def test_both_spotters_beat_the_random_control_on_clean_videos(clean: Path, tmp_path: Path) -> None:
    baseline = SpotParams.from_mapping({"control_draws": 50})
    score_baseline(clean, [clean.parent / "features"], tmp_path / "baseline", baseline)
    metrics = evaluate(clean, [tmp_path / "baseline"], tmp_path / "out" / "spot_metrics.json", baseline, "clean")
    assert metrics["beats_control"]["micro"] and metrics["micro"]["f1"] >= 0.5
    for name in ("intervals.csv", "curves.csv", "curves.png"):
        assert (tmp_path / "out" / name).is_file()
    assert json.loads((tmp_path / "out" / "spot_metrics.json").read_text())["videos"] == 3
    spotted = pd.read_csv(tmp_path / "out" / "intervals.csv")
    assert (spotted["iou"].dropna() >= 0.5).all() and spotted["truth_row"].notna().sum() == metrics["overall"]["tp"]

    trained = SpotParams.from_mapping({"method": "learned", "control_draws": 50, "learned": {"epochs": 6}})
    score_all(clean, [clean.parent / "features"], tmp_path / "learned", trained, "all", "all")
    assert len(list((tmp_path / "learned").rglob("curves.npz"))) == 3  # one per fold
    metrics = evaluate(clean, [tmp_path / "learned"], tmp_path / "l" / "spot_metrics.json", trained, "clean")
    assert metrics["beats_control"]["overall"]


def test_motionless_videos_spot_no_better_than_chance(tmp_path: Path) -> None:
    """The negative control: without expressions the curves carry no information about where the
    annotations are, so the spotter's F1 stays within the random-interval control's range."""
    still = {**CLEAN, "micro_amplitude_px": 0.0, "macro_amplitude_px": 0.0}
    videos = build(tmp_path / "still", still)
    params = SpotParams.from_mapping({"control_draws": 100})
    score_baseline(videos, [tmp_path / "still" / "features"], tmp_path / "b", params)
    metrics = evaluate(videos, [tmp_path / "b"], tmp_path / "out" / "spot_metrics.json", params, "still")
    assert not metrics["beats_control"]["overall"]


def test_evaluation_needs_every_videos_curves(clean: Path, tmp_path: Path) -> None:
    params = SpotParams.from_mapping({"method": "learned", "learned": {"epochs": 1}})
    fold = read_videos(clean)["fold"].iloc[0]
    score_all(clean, [clean.parent / "features"], tmp_path / "learned", params, fold, "all")
    with pytest.raises(MerecError, match="no curves for video"):
        evaluate(clean, [tmp_path / "learned"], tmp_path / "m.json", params)
    curves = read_curves([tmp_path / "learned"])[0]
    assert not spot_videos(curves, read_videos(clean)[lambda t: t["fold"] == fold], 0.5).empty
    assert set(read_intervals(clean)["type"]) == {"micro", "macro"}
