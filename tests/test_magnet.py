"""MagNet: architecture, losses, synthetic data, training, checkpoints and the shipped weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from merec.io import MerecError
from merec.magnify import magnet as magnet_module
from merec.magnify import make_magnifier
from merec.magnify.magnet import MagNet, MagNetMagnifier, load_magnet, parameter_count
from merec.magnify.magnet_data import (
    PairConfig,
    Scene,
    face_scene,
    image_pool,
    make_batch,
    natural_patch,
    poisson_noise,
)
from merec.magnify.magnet_train import (
    batch_tensors,
    learning_rate,
    loss_terms,
    magnet_losses,
    save_checkpoint,
    train_magnet,
)
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("magnet") / "random.pt"
    save_checkpoint(MagNet(), path)
    return path


# ----------------------------------------------------------------------------- architecture


def test_parameter_count_is_about_one_million() -> None:
    assert 850_000 < parameter_count(MagNet()) < 1_100_000


def test_no_biases_and_reflect_padding() -> None:
    model = MagNet()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(conv.bias is None for conv in convs)
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in model.modules())


def test_branch_resolutions_and_non_square_shapes() -> None:
    model = MagNet().eval()
    image = torch.rand(2, 3, 36, 52) * 2 - 1
    texture, shape = model.encode(image)
    assert texture.shape == (2, 32, 9, 13)  # 1/4 resolution
    assert shape.shape == (2, 32, 18, 26)  # 1/2 resolution
    with torch.no_grad():
        out = model(image, image.flip(0), torch.tensor([2.0, 5.0]))
    assert out.shape == image.shape
    assert out.min() >= -1 and out.max() <= 1  # clipped at inference


def test_identical_frames_and_alpha_one_give_the_reconstruction() -> None:
    torch.manual_seed(1)
    model = MagNet().eval()
    a = torch.rand(1, 3, 32, 40) * 2 - 1
    b = torch.roll(a, 1, dims=3)
    with torch.no_grad():
        # no motion: the manipulator adds nothing, whatever alpha
        assert torch.equal(model(a, a, 1.0), model(a, a, 7.5))
        # alpha = 1: the shape code of b is passed through unchanged
        _, shape_a = model.encode(a)
        _, shape_b = model.encode(b)
        assert torch.equal(model.manipulator(shape_a, shape_b, 1.0), shape_b)
        for residual in (False, True):
            assert torch.equal(model(a, b, 1.0, residual), model(b, b, 3.0, residual))
            assert not torch.equal(model(a, b, 3.0, residual), model(a, b, 1.0, residual))
        # residual decoding returns frame b itself when nothing is to be magnified
        torch.testing.assert_close(model(a, b, 1.0, residual=True), b, atol=1e-6, rtol=0)
        assert (model(a, b, 1.0, residual=False) - b).abs().mean() > 0.1  # untrained decoder


def test_magnifier_handles_sizes_that_are_not_multiples_of_four(random_checkpoint: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 30, 46, 3), dtype=np.uint8)
    magnifier = MagNetMagnifier(alpha=3.0, device="cpu", checkpoint=str(random_checkpoint), batch_size=2)
    out = magnifier(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[0], frames[0])  # residual mode: the onset is returned as it is
    # batching does not change the result
    single = MagNetMagnifier(alpha=3.0, device="cpu", checkpoint=str(random_checkpoint), batch_size=5)
    assert np.array_equal(single(frames), out)
    with pytest.raises(MerecError, match="uint8"):
        magnifier(frames.astype(np.float32))


def test_make_magnifier_passes_the_options(random_checkpoint: Path) -> None:
    magnifier = make_magnifier("magnet", 4.0, {"checkpoint": str(random_checkpoint), "batch_size": 3}, "cpu")
    assert isinstance(magnifier, MagNetMagnifier)
    assert (magnifier.alpha, magnifier.batch_size, magnifier.device) == (4.0, 3, "cpu")


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
    return train_magnet(
        path,
        seed=3,
        steps=steps,
        batch_size=2,
        crop=32,
        lr=3e-4,
        warmup_steps=0,
        lr_half_life=0,
        val_pairs=2,
        val_every=6,
        log_every=3,
        save_every=6,
        threads=1,
        device="cpu",
    )


def test_training_lowers_the_loss_and_writes_three_files_atomically(tmp_path: Path) -> None:
    checkpoint = _run(tmp_path / "a")
    out = checkpoint.parent
    assert sorted(p.name for p in out.iterdir()) == ["curve.csv", "magnet.pt", "train.json"]
    curve = pd.read_csv(out / "curve.csv")
    assert list(curve["step"]) == [3, 6, 9, 12, 15, 16]
    assert curve["val_ssim"].notna().sum() == 3
    info = json.loads((out / "train.json").read_text())
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
        train_magnet(tmp_path, steps=1, alpha_range=(0.5, 2.0), device="cpu")
    with pytest.raises(MerecError, match="crop"):
        train_magnet(tmp_path, steps=1, crop=30, device="cpu")


# ----------------------------------------------------------------------------- checkpoints


def test_wrong_architecture_is_reported(tmp_path: Path, random_checkpoint: Path) -> None:
    state = torch.load(random_checkpoint, weights_only=True)
    state.pop("decoder.out.1.1.weight")
    state["encoder.stem.0.0.1.weight"] = torch.zeros(8, 3, 7, 7)
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(MerecError) as error:
        load_magnet(bad)
    message = str(error.value)
    assert "1 missing keys: decoder.out.1.1.weight" in message
    assert "1 unexpected keys: extra.weight" in message
    assert "encoder.stem.0.0.1.weight: file (8, 3, 7, 7) vs model (16, 3, 7, 7)" in message


def test_truncated_and_pickled_files_are_rejected(tmp_path: Path, random_checkpoint: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    data = random_checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MerecError, match="truncated"):
        load_magnet(truncated)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": MagNet()}, pickled)  # a whole module: refused by weights_only
    with pytest.raises(MerecError):
        load_magnet(pickled)


def test_missing_checkpoints_say_how_to_train_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MerecError, match=r"magnify\.magnet\.checkpoint"):
        load_magnet(tmp_path / "nope.pt")
    monkeypatch.setattr(magnet_module, "SHIPPED_CHECKPOINT", tmp_path / "missing.pt")
    with pytest.raises(MerecError, match="merec magnet-train"):
        MagNetMagnifier(alpha=2.0, device="cpu")


# ----------------------------------------------------------------------------- shipped weights


def test_shipped_checkpoint_and_its_provenance() -> None:
    assert magnet_module.SHIPPED_CHECKPOINT.stat().st_size < 10 * 2**20
    provenance = json.loads(magnet_module.SHIPPED_CHECKPOINT.with_suffix(".json").read_text())
    assert provenance["train_magnet"]["seed"] == provenance["train"]["seed"]
    assert "train_magnet(" in provenance["command"]
    assert hashlib.sha256(magnet_module.SHIPPED_CHECKPOINT.read_bytes()).hexdigest() == provenance["sha256"]
    # the magnet_train stage, run with params.yaml's section, reproduces the shipped file
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["magnet_train"] == provenance["train_magnet"]
    assert params["magnify"]["magnet"]["checkpoint"] == "merec/weights/magnet.pt"


def test_shipped_checkpoint_magnifies_a_clip() -> None:
    scene = face_scene(np.random.default_rng(0), 0.5, size=128)
    frames = np.stack([np.round(scene.render(t) * 255).astype(np.uint8) for t in (0.0, 0.5, 1.0)])
    out = MagNetMagnifier(alpha=4.0, device="cpu")(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[0], frames[0])  # the onset is reproduced
    change_in = np.abs(frames[2].astype(float) - frames[0]).mean()
    change_out = np.abs(out[2].astype(float) - out[0]).mean()
    assert change_out > 2 * change_in  # the motion is amplified


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu(random_checkpoint: Path) -> None:  # pragma: no cover - GPU only
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    cpu = MagNetMagnifier(2.0, device="cpu", checkpoint=str(random_checkpoint))(frames)
    gpu = MagNetMagnifier(2.0, device="cuda", checkpoint=str(random_checkpoint))(frames)
    assert np.abs(cpu.astype(int) - gpu).max() <= 2
