"""Frontalization: head pose from the landmarks, frontal landmarks, the warp, the mirrored half, and
``face.align: frontalize`` in the face stage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from merec.errors import MerecError
from merec.face import FaceParams, align_clip, alignment_transform, apply_transform
from merec.frontalize import (
    POSE_POINTS,
    estimate_pose,
    frontal_landmarks,
    frontal_maps,
    frontal_view,
    generic_shape,
    mirror_weights,
)
from merec.landmarks import MIRROR, eye_centres
from merec.synth.clips import SynthParams, make_subjects
from tests.helpers.images import ONE_FACE
from tests.helpers.scripts import load_script

SCALE, OFFSET = 60.0, np.array([150.0, 120.0])


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-axes rotation (x right, y down, z away): yaw > 0 turns the face to the image's right,
    pitch > 0 down, roll > 0 clockwise."""
    return Rotation.from_euler("zxy", [roll, pitch, -yaw], degrees=True).as_matrix()


def projected(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The generic shape turned by the angles and seen by a scaled-orthographic camera."""
    shape = generic_shape()
    return SCALE * (shape @ rotation(yaw, pitch, roll).T)[:, :2] + OFFSET


def test_the_generic_shape_is_symmetric_with_unit_eye_distance() -> None:
    shape = generic_shape()
    assert shape.shape == (68, 3)
    mirrored = shape[MIRROR] * np.array([-1.0, 1.0, 1.0])
    assert np.allclose(shape, mirrored, atol=1e-3)
    right, left = eye_centres(shape[:, :2])
    assert np.linalg.norm(left - right) == pytest.approx(1.0, abs=1e-3)
    assert shape[30, 2] < shape[36, 2] - 0.2  # the nose tip is nearer the camera than the eye corners


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (-30, 0, 0), (0, 15, 0), (0, -15, 0), (20, 10, 12)])
def test_the_pose_of_a_turned_generic_shape_is_recovered(angles: tuple[float, float, float]) -> None:
    pose = estimate_pose(projected(*angles))
    assert np.allclose(pose.rotation, rotation(*angles), atol=1e-4)
    if np.count_nonzero(angles) == 1:  # each angle read off alone
        assert pose.angles() == pytest.approx(angles, abs=0.01)
    assert pose.scale == pytest.approx(SCALE, rel=1e-3)
    assert np.allclose(pose.offset, OFFSET, atol=1e-2)


def test_frontal_landmarks_undo_the_turn() -> None:
    frontal = projected(0, 0, 0)
    turned = projected(25, 10, 0)
    assert np.abs(turned - frontal).max() > 10  # the turn moves landmarks by many pixels
    recovered = frontal_landmarks(turned, estimate_pose(turned))
    assert np.abs(recovered - frontal).max() < 0.05


def test_only_the_rigid_points_set_the_pose() -> None:
    landmarks = projected(15, 0, 0)
    expression = landmarks.copy()
    moving = np.setdiff1d(np.arange(68), POSE_POINTS)
    expression[moving] += np.random.default_rng(0).normal(0, 3, (len(moving), 2))  # brows, lips, jaw move
    assert estimate_pose(expression).angles() == pytest.approx(estimate_pose(landmarks).angles(), abs=1e-6)


def test_a_face_turned_too_far_is_an_error_that_says_what_to_do() -> None:
    turned = projected(70, 0, 0)
    with pytest.raises(MerecError, match=r"turned 70 degrees.*face.align: similarity"):
        frontal_landmarks(turned, estimate_pose(turned))


def test_the_warp_is_the_crop_itself_when_the_face_is_frontal() -> None:
    landmarks = projected(0, 0, 0)
    crop = np.array([[0.5, 0.0, -20.0], [0.0, 0.5, -10.0]])
    map_x, map_y = frontal_maps(landmarks, landmarks, crop, 64)
    ys, xs = np.mgrid[0:64, 0:64]
    assert np.allclose(map_x, (xs + 20.0) / 0.5, atol=1e-3)
    assert np.allclose(map_y, (ys + 10.0) / 0.5, atol=1e-3)


def test_the_warp_takes_frontal_landmarks_to_the_observed_ones() -> None:
    observed = projected(20, 0, 0)
    frontal = frontal_landmarks(observed, estimate_pose(observed))
    params = FaceParams.from_mapping({"size": 128})
    crop = alignment_transform(frontal, params)
    map_x, map_y = frontal_maps(observed, frontal, crop, 128)
    in_crop = apply_transform(crop, frontal)
    for (x, y), target in zip(in_crop[POSE_POINTS], observed[POSE_POINTS], strict=True):
        column, row = round(x), round(y)
        sampled = np.array([map_x[row, column], map_y[row, column]])
        assert np.linalg.norm(sampled - target) < 2.5  # within a pixel of the crop, at a scale of 2.3


def test_the_turned_away_half_is_mirrored_only_beyond_the_threshold() -> None:
    assert mirror_weights(estimate_pose(projected(20, 0, 0)), 100, 30) is None
    right_turn = mirror_weights(estimate_pose(projected(35, 0, 0)), 100, 30)
    assert right_turn is not None and right_turn.shape == (100,)
    assert right_turn[:40].max() == 0.0 and right_turn[60:].min() == 1.0  # the image's right half
    left_turn = mirror_weights(estimate_pose(projected(-35, 0, 0)), 100, 30)
    assert np.allclose(left_turn, right_turn[::-1])


def test_frontalize_in_the_face_stage_keeps_a_frontal_face_close_to_the_similarity_crop() -> None:
    frames = [ONE_FACE, ONE_FACE]
    similarity = align_clip(frames, 1, "s1", FaceParams.from_mapping({"size": 96}))
    frontal = align_clip(frames, 1, "s1", FaceParams.from_mapping({"size": 96, "align": "frontalize"}))
    assert frontal["frames"].shape == similarity["frames"].shape == (2, 96, 96, 3)
    assert np.array_equal(frontal["pose"], similarity["pose"]) and frontal["pose"].shape == (3,)
    assert np.abs(frontal["pose"]).max() < 20  # a roughly frontal photo
    right, left = eye_centres(frontal["landmarks"])
    assert np.allclose(right, [(0.5 - 0.15) * 96, 0.4 * 96], atol=1.0) or abs(right[1] - left[1]) < 1.0
    difference = np.abs(frontal["frames"].astype(int) - similarity["frames"].astype(int)).mean()
    assert difference < 40
    assert np.array_equal(frontal["frames"][0], frontal["frames"][1])  # one warp for the whole clip


def test_frontalize_mirrors_the_hidden_half_of_a_strongly_turned_face() -> None:
    benchmark = load_script("frontalization")
    subject = next(iter(make_subjects(SynthParams.from_mapping({"subjects": 2})).values()))
    frame = benchmark.turned_face(subject, 35, 0)
    params = {"size": 96, "align": "frontalize", "mirror_yaw_deg": 30}
    crop = align_clip([frame], 0, "turned", FaceParams.from_mapping(params))
    assert crop["pose"][0] > 25
    image = crop["frames"][0].astype(int)
    assert np.abs(image[:, 60:] - image[:, ::-1][:, 60:]).max() <= 1  # right half = mirrored left half
    unmirrored = align_clip([frame], 0, "turned", FaceParams.from_mapping(params | {"mirror_yaw_deg": 60}))
    assert np.abs(unmirrored["frames"][0].astype(int)[:, 60:] - image[:, 60:]).mean() > 1


def test_a_frontal_view_of_a_turned_crop_puts_the_landmarks_nearer_the_frontal_ones() -> None:
    benchmark = load_script("frontalization")
    subject = next(iter(make_subjects(SynthParams.from_mapping({"subjects": 2})).values()))
    params = FaceParams.from_mapping({"size": 160})
    inner = np.arange(17, 68)
    straight = align_clip([benchmark.turned_face(subject, 0, 0)], 0, "straight", params)
    turned = align_clip([benchmark.turned_face(subject, 25, 0)], 0, "turned", params)
    view = frontal_view(turned["frames"][0], turned["landmarks"], 90.0)
    assert view.shape == (160, 160, 3) and view.dtype == np.uint8
    seen = align_clip([view], 0, "view", params)  # dlib on the frontal view, placed by its eyes

    def error(landmarks: np.ndarray) -> float:
        return float(np.linalg.norm(landmarks[inner] - straight["landmarks"][inner], axis=1).mean())

    assert error(seen["landmarks"]) < 0.8 * error(turned["landmarks"])
    again = frontal_view(straight["frames"][0], straight["landmarks"], 90.0)
    assert np.abs(again.astype(int) - straight["frames"][0].astype(int)).mean() < 8  # a frontal face stays


def test_a_frontal_view_needs_landmarks_that_span_a_face() -> None:
    with pytest.raises(MerecError, match="do not span a face"):
        frontal_view(np.zeros((32, 32, 3), np.uint8), np.full((68, 2), 16.0), 30.0)
