"""MagNet: architecture, losses, synthetic data, training, checkpoints and the shipped weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmarks.scenes import face_scene
from merec.checkpoints import save_state_dict
from merec.errors import MerecError
from merec.magnify import MagnetParams, MagnifyParams, make_magnifier
from merec.magnify import magnet as magnet_module
from merec.magnify.magnet import MagNet, MagNetMagnifier, load_magnet, parameter_count
from tests.helpers import REPO


def magnet(alpha: float, checkpoint: Path | None = None, device: str = "cpu", **options) -> MagNetMagnifier:
    """A MagNet magnifier with ``magnify.magnet`` options (``checkpoint`` None: the shipped weights)."""
    if checkpoint is not None:
        options["checkpoint"] = str(checkpoint)
    return MagNetMagnifier(alpha, MagnetParams.from_mapping(options), device)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("magnet") / "random.pt"
    save_state_dict(MagNet(), path)
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
    magnifier = magnet(3.0, random_checkpoint, batch_size=2)
    out = magnifier(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[0], frames[0])  # residual mode: the onset is returned as it is
    # batching does not change the result
    single = magnet(3.0, random_checkpoint, batch_size=5)
    assert np.array_equal(single(frames), out)
    with pytest.raises(MerecError, match="uint8"):
        magnifier(frames.astype(np.float32))


def test_make_magnifier_passes_the_options(random_checkpoint: Path) -> None:
    options = {"checkpoint": str(random_checkpoint), "batch_size": 3}
    magnifier = make_magnifier(MagnifyParams.from_mapping({"alpha": 4.0, "device": "cpu", "magnet": options}))
    assert isinstance(magnifier, MagNetMagnifier)
    assert (magnifier.alpha, magnifier.batch_size, magnifier.device) == (4.0, 3, "cpu")


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
    # the default names the shipped weights: found through the package when not in the working directory
    monkeypatch.chdir(tmp_path)
    assert magnet(2.0).model is not None
    monkeypatch.setattr(magnet_module, "SHIPPED_CHECKPOINT", tmp_path / "missing.pt")
    with pytest.raises(MerecError, match="merec magnet-train"):
        magnet(2.0)


# ----------------------------------------------------------------------------- shipped weights


def test_shipped_checkpoint_and_its_provenance() -> None:
    assert magnet_module.SHIPPED_CHECKPOINT.stat().st_size < 10 * 2**20
    provenance = json.loads(magnet_module.SHIPPED_CHECKPOINT.with_suffix(".json").read_text())
    record = json.loads((magnet_module.WEIGHTS_DIR / "magnet_train.json").read_text())
    assert provenance["train_magnet"]["seed"] == record["seed"] and record["steps_done"] == 10000
    assert provenance["command"].startswith("merec magnet-train")
    assert hashlib.sha256(magnet_module.SHIPPED_CHECKPOINT.read_bytes()).hexdigest() == provenance["sha256"]
    # the magnet_train stage, run with params.yaml's section, reproduces the shipped file
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["magnet_train"] == provenance["train_magnet"]
    assert params["magnify"]["magnet"]["checkpoint"] == "merec/weights/magnet.pt"


def test_shipped_checkpoint_magnifies_a_clip() -> None:
    scene = face_scene(np.random.default_rng(0), 0.5, size=128)
    frames = np.stack([np.round(scene.render(t) * 255).astype(np.uint8) for t in (0.0, 0.5, 1.0)])
    out = magnet(4.0)(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[0], frames[0])  # the onset is reproduced
    change_in = np.abs(frames[2].astype(float) - frames[0]).mean()
    change_out = np.abs(out[2].astype(float) - out[0]).mean()
    assert change_out > 2 * change_in  # the motion is amplified


@pytest.mark.gpu
def test_cuda_matches_cpu(random_checkpoint: Path) -> None:  # pragma: no cover - GPU only
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    cpu = magnet(2.0, random_checkpoint)(frames)
    gpu = magnet(2.0, random_checkpoint, device="cuda")(frames)
    assert np.abs(cpu.astype(int) - gpu).max() <= 2


def test_bfloat16_precision_stays_close_to_float32(random_checkpoint: Path) -> None:
    frames = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    exact = magnet(2.0, random_checkpoint)(frames)
    fast = magnet(2.0, random_checkpoint, precision="bfloat16")(frames)
    assert fast.dtype == np.uint8 and np.array_equal(fast[0], frames[0])
    assert np.abs(fast.astype(int) - exact).mean() < 2.0
