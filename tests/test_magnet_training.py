"""MagNet training: losses, the synthetic pairs with known motion, the training loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.scenes import face_scene
from merec.io import (
    MerecError,
)
from merec.magnify.magnet import MagNet, load_magnet
from merec.magnify.training.loop import (
    MagnetTrainParams,
    batch_tensors,
    learning_rate,
    loss_terms,
    magnet_losses,
    train_magnet,
)
from merec.magnify.training.pairs import PairConfig, Scene, image_pool, make_batch, natural_patch, poisson_noise

# ----------------------------------------------------------------------------- losses


def test_loss_is_zero_for_a_perfect_output_and_counts_the_consistency_terms() -> None:
    target = torch.rand(2, 3, 8, 8)
    texture = torch.rand(2, 32, 2, 2)
    shape = torch.rand(2, 32, 4, 4)
    perfect = loss_terms(target, target, texture, texture, shape, shape, 0.1)
    assert all(float(v) == 0.0 for v in perfect.values())
    losses = loss_terms(target + 0.5, target, texture + 0.2, texture, shape, shape - 0.4, 0.1)
    assert float(losses["l1"]) == pytest.approx(0.5)
    assert float(losses["texture"]) == pytest.approx(0.2)
    assert float(losses["shape"]) == pytest.approx(0.4)
    assert float(losses["total"]) == pytest.approx(0.5 + 0.1 * (0.2 + 0.4))
    with_residual = loss_terms(target, target, texture, texture, shape, shape, 0.1, target - 0.25, 2.0)
    assert float(with_residual["l1_residual"]) == pytest.approx(0.25)
    assert float(with_residual["total"]) == pytest.approx(2.0 * 0.25)


def test_model_losses_use_the_colour_perturbed_pair() -> None:
    torch.manual_seed(0)
    model = MagNet()
    data = batch_tensors(make_batch(3, 0, 2, PairConfig(crop=32)), "cpu")
    paper_only = magnet_losses(model, data, 1.0, residual_weight=0.0)
    assert float(paper_only["l1_residual"]) == 0.0
    losses = magnet_losses(model, data, 1.0)
    assert set(losses) == {"total", "l1", "l1_residual", "texture", "shape"}
    assert float(losses["l1"].detach()) == pytest.approx(float(paper_only["l1"].detach()), rel=1e-5)
    assert 0 < float(losses["l1_residual"].detach()) < float(losses["l1"].detach())
    assert float(losses["texture"].detach()) > 0 and float(losses["shape"].detach()) > 0
    losses["total"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_learning_rate_schedule() -> None:
    assert learning_rate(0, 1e-3, 10, 100) == pytest.approx(1e-4)
    assert learning_rate(10, 1e-3, 10, 100) == pytest.approx(1e-3)
    assert learning_rate(110, 1e-3, 10, 100) == pytest.approx(5e-4)
    assert learning_rate(10_000, 1e-3, 0, 0) == 1e-3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- data


def test_batches_are_deterministic_under_a_seed() -> None:
    config = PairConfig(crop=32)
    first, again, other = (
        make_batch(5, 2, 3, config),
        make_batch(5, 2, 3, config),
        make_batch(6, 2, 3, config),
    )
    for name, value in vars(first).items():
        assert np.array_equal(value, getattr(again, name)), name
    assert not np.array_equal(first.frame_a, other.frame_a)
    assert first.frame_a.shape == (3, 32, 32, 3) and first.frame_a.dtype == np.uint8
    assert np.all(first.alpha >= 1.0)
    largest = np.maximum(np.linalg.norm(first.fg_motion, axis=1), np.linalg.norm(first.bg_motion, axis=1))
    assert np.all(first.alpha * largest <= 12.0 + 1e-4)


def _gradient_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least-squares global translation (dx, dy) from a to b (Lucas-Kanade, symmetric gradients)."""
    gy, gx = np.gradient((a + b) / 2.0)
    dt = b - a
    system = np.array([[(gx * gx).sum(), (gx * gy).sum()], [(gx * gy).sum(), (gy * gy).sum()]])
    return np.linalg.solve(system, -np.array([(gx * dt).sum(), (gy * dt).sum()]))


def test_target_moves_alpha_times_the_input_motion() -> None:
    rng = np.random.default_rng(0)
    size, crop = 97, 64
    texture = natural_patch(rng, size, image_pool()[:4])
    motion, alpha = np.array([0.25, -0.5]), 4.0  # the target moves by exactly (1, -2) px
    scene = Scene(
        background=texture,
        foreground=np.zeros_like(texture),
        mask=np.zeros((size, size), np.float32),
        fg_motion=motion,
        bg_motion=motion,
        offset=np.zeros(2),
        crop=crop,
    )
    frame_a, frame_b, target = (scene.render(t) for t in (0.0, 1.0, alpha))
    # target(y, x) = frame_a(y + 2, x - 1): an exact integer translation of the reference
    np.testing.assert_allclose(target[4:-4, 4:-4], frame_a[6:-2, 3:-5], atol=1e-5)
    # frame b is the sub-pixel quarter of it (independent gradient-based estimate)
    grey = [frame.mean(axis=2).astype(np.float64) for frame in (frame_a, frame_b, target)]
    np.testing.assert_allclose(_gradient_shift(grey[0], grey[1]), motion, atol=0.05)
    b_to_target = _gradient_shift(grey[1], scene.render(1.2).mean(axis=2).astype(np.float64))
    np.testing.assert_allclose(b_to_target, 0.2 * motion, atol=0.01)


def test_independent_foreground_and_background_motion() -> None:
    rng = np.random.default_rng(1)
    size = 81
    layer = natural_patch(rng, size, image_pool()[:4])
    mask = np.zeros((size, size), np.float32)
    mask[:, : size // 2] = 1.0  # left half foreground, right half background
    scene = Scene(layer, layer, mask, np.array([1.0, 0.0]), np.zeros(2), np.zeros(2), crop=48)
    still, moved = scene.render(0.0), scene.render(3.0)
    assert np.abs(moved[:, 30:] - still[:, 30:]).max() < 1e-4  # static background
    assert np.abs(moved[:, :18] - still[:, :18]).mean() > 1e-3  # moving foreground


def test_poisson_noise_strength_and_range() -> None:
    rng = np.random.default_rng(0)
    grey = np.full((200, 200, 3), 0.5, np.float32)
    noisy = poisson_noise(rng, grey, 3.0)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert noisy.std() * 255 == pytest.approx(3.0, rel=0.1)
    assert noisy.mean() == pytest.approx(0.5, abs=0.002)
    assert poisson_noise(rng, grey, 0.0) is grey
    dark = poisson_noise(rng, np.full((200, 200, 3), 0.1, np.float32), 3.0)
    assert dark.std() < noisy.std()  # shot noise grows with intensity


def test_face_scene_has_the_requested_peak_motion() -> None:
    scene = face_scene(np.random.default_rng(0), 0.5, size=64)
    assert np.linalg.norm(scene.flow, axis=2).max() == pytest.approx(0.5, rel=1e-4)
    assert scene.render(0.0).shape == (64, 64, 3)


# ----------------------------------------------------------------------------- training


def _run(path: Path, steps: int = 16) -> Path:
    params = {
        "seed": 3, "steps": steps, "batch_size": 2, "crop": 32, "lr": 3e-4, "warmup_steps": 0, "lr_half_life": 0,
        "val_pairs": 2, "val_every": 6, "log_every": 3, "save_every": 6, "threads": 1, "device": "cpu",
    }  # fmt: skip
    return train_magnet(path / "magnet.pt", MagnetTrainParams.from_mapping(params))


def test_training_lowers_the_loss_and_writes_three_files_atomically(tmp_path: Path) -> None:
    checkpoint = _run(tmp_path / "a")
    out = checkpoint.parent
    assert sorted(p.name for p in out.iterdir()) == ["magnet.pt", "magnet_curve.csv", "magnet_train.json"]
    curve = pd.read_csv(out / "magnet_curve.csv")
    assert list(curve["step"]) == [3, 6, 9, 12, 15, 16]
    assert curve["val_ssim"].notna().sum() == 3
    info = json.loads((out / "magnet_train.json").read_text())
    assert info["complete"] and info["steps_done"] == 16 and info["params"]["seed"] == 3
    # the loss on the training batches drops compared with the initial weights
    torch.manual_seed(3)
    initial = MagNet()
    trained = load_magnet(checkpoint).train()
    config = PairConfig(crop=32)
    batches = [batch_tensors(make_batch(3, step, 2, config), "cpu") for step in range(16)]
    with torch.no_grad():
        before = np.mean([float(magnet_losses(initial, b, 0.1)["total"]) for b in batches])
        after = np.mean([float(magnet_losses(trained, b, 0.1)["total"]) for b in batches])
    assert after < 0.9 * before


def test_training_is_deterministic(tmp_path: Path) -> None:
    first = _run(tmp_path / "a", steps=4)
    second = _run(tmp_path / "b", steps=4)
    assert first.read_bytes() == second.read_bytes()


def test_training_rejects_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(MerecError, match="alpha_range"):
        MagnetTrainParams.from_mapping({"steps": 1, "alpha_range": [0.5, 2.0]})
    with pytest.raises(MerecError, match="crop"):
        train_magnet(tmp_path / "m.pt", MagnetTrainParams.from_mapping({"steps": 1, "crop": 30, "device": "cpu"}))
    with pytest.raises(MerecError, match=r"with a \.pt suffix"):
        train_magnet(tmp_path / "m", MagnetTrainParams.from_mapping({"steps": 1, "device": "cpu"}))
