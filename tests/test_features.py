"""The features stage: optical flow, optical strain, ROI tensors, and NaN flow as an error naming the sample."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from merec import features as features_stage
from merec.features import FeatureParams, make_flow, optical_strain, roi_boxes, sample_features
from merec.io import (
    MerecError,
)
from tests.helpers.images import ONE_FACE, shifted
from tests.helpers.stages import write_stage

# ---------------------------------------------------------------------------------------------
# NaN or infinite flow


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_flow_fails_the_stage_naming_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: float
) -> None:
    frames = np.stack([ONE_FACE[:64, 10:74]] * 3)
    arrays = {
        sample: {"frames": frames.copy(), "landmarks": np.full((68, 2), 32.0)} for sample in ("s-1", "s-2", "s-3")
    }
    arrays["s-2"]["frames"][0, 0, 0] = 255
    (magnified,) = write_stage(tmp_path / "magnify", "magnify", arrays)
    real = features_stage.onset_flows

    def flows(clip: np.ndarray, flow: object) -> np.ndarray:
        out = real(clip, flow)
        if clip.dtype == np.uint8 and clip[0, 0, 0, 0] == 255:
            out[0, 1, 5, 5] = bad
        return out

    monkeypatch.setattr(features_stage, "onset_flows", flows)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # two worker processes: the error crosses the pool
    params = FeatureParams.from_mapping({"flow": "farneback", "roi_size": 16, "face_size": 16})
    with pytest.raises(MerecError, match=r"sample s-2: optical flow contains NaN or infinite values"):
        features_stage.run(magnified, tmp_path / "features" / "shard-0.json", params)
    assert not list((tmp_path / "features").glob("shard-0*"))


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    face = np.ascontiguousarray(data.astronaut()[40:168, 140:268])
    return np.stack([face, shifted(face, 0.5), shifted(face, 1.0, -0.5)])


@pytest.mark.parametrize("method", ["tvl1", "farneback", "dis"])
def test_flow_recovers_a_known_translation(method: str, clip: np.ndarray) -> None:
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    flow = make_flow(method)(gray[0], gray[2])
    centre = flow[32:96, 32:96]
    assert abs(np.median(centre[..., 0]) - 1.0) < 0.25
    assert abs(np.median(centre[..., 1]) + 0.5) < 0.25


def test_strain_of_a_pure_translation_is_zero_and_of_a_stretch_is_not() -> None:
    translation = np.ones((16, 16, 2), np.float32)
    assert np.allclose(optical_strain(translation), 0)
    xs = np.tile(np.arange(16, dtype=np.float32), (16, 1))
    stretch = np.stack([0.1 * xs, np.zeros_like(xs)], axis=-1)
    assert np.allclose(optical_strain(stretch)[2:-2, 2:-2], 0.1)


def test_sample_features_shapes_and_roi_placement(clip: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    landmarks = np.tile(np.array([[64.0, 64.0]]), (68, 1))
    landmarks[17:22] = [30, 20]  # a brow near the top-left corner
    params = FeatureParams.from_mapping({"flow": "farneback", "roi_size": 24, "face_size": 16, "volume_size": 32})
    out = sample_features(clip, landmarks, "s1", params)
    n_rois = len(params.rois)
    assert out["frames"].shape == (3, 1, 32, 32)  # every frame, onset included, grey in [0, 1]
    grey = cv2.resize(cv2.cvtColor(clip[0], cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
    assert np.allclose(out["frames"][0, 0], grey / 255.0, atol=1e-3)
    assert out["rois"].shape == (n_rois, 2, 3, 24, 24)
    assert out["face"].shape == (2, 3, 16, 16)
    assert out["roi_boxes"][0].tolist() == [18, 8, 42, 32]
    assert list(out["roi_names"]) == list(params.rois)
    # these landmarks are no face: the frontal input keeps the crop's apex and says why
    assert out["frontal"].shape == (1, 32, 32)
    assert np.array_equal(out["frontal"], out["frames"][-1])
    assert "sample s1: frontal input left as the crop's apex" in caplog.text


def test_roi_boxes_stay_inside_and_reject_bad_indices() -> None:
    landmarks = np.zeros((68, 2))
    boxes = roi_boxes(landmarks, {"corner": [0]}, 24, 128)
    assert boxes.tolist() == [[0, 0, 24, 24]]
    with pytest.raises(MerecError, match="features.rois.bad"):
        roi_boxes(landmarks, {"bad": [70]}, 24, 128)


def test_nan_flow_names_the_sample(clip: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    import merec.features as features

    monkeypatch.setattr(features, "onset_flows", lambda frames, flow: np.full((2, 3, 128, 128), np.nan, np.float32))
    with pytest.raises(MerecError, match="sample s7: optical flow contains NaN"):
        features.sample_features(clip, np.zeros((68, 2)) + 64, "s7", FeatureParams.from_mapping({"flow": "dis"}))


def test_the_frontal_input_is_the_apex_seen_frontally() -> None:
    from merec.face import FaceParams, align_clip
    from merec.frontalize import frontal_view

    crop = align_clip([ONE_FACE, shifted(ONE_FACE, 1.0)], 1, "s1", FaceParams.from_mapping({"size": 96}))
    params = FeatureParams.from_mapping({"flow": "farneback", "volume_size": 32, "frontal_mirror_yaw_deg": 90})
    out = sample_features(crop["frames"], crop["landmarks"], "s1", params)
    view = frontal_view(crop["frames"][-1], crop["landmarks"], 90)
    grey = cv2.resize(cv2.cvtColor(view, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA) / 255.0
    assert np.allclose(out["frontal"][0], grey, atol=1e-3)  # the apex (last frame), not the onset
    assert not np.allclose(out["frontal"], out["frames"][-1], atol=1e-3)  # the photo's own small turn is undone
