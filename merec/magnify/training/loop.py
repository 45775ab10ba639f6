"""Training loop for MagNet on the synthetic pairs of :mod:`merec.magnify.training.pairs`.

Losses (Oh et al., ECCV 2018): the network sees ``frame_a`` and ``frame_b_perturbed`` (frame b with
perturbed colours in half of the pairs) and must produce ``target_perturbed`` (``alpha`` times the
a -> b motion, in b's colours):

    loss = L1(output, target') + lambda * (L1(texture(a), texture(b)) + L1(shape(b), shape(b')))

The texture term asks frames of the same colours but different motion for equal texture codes, the
shape term asks frames of the same motion but different colours for equal shape codes.

At inference merec uses *residual decoding*, ``b + D(V_b, M~) - D(V_b, M_b)`` (see
:meth:`merec.magnify.magnet.MagNet.magnify`): the decoder's reconstruction errors cancel, which
matters because in a CPU budget (~10k steps instead of the paper's ~300k) the decoded image is
still blurrier than the input. ``residual_weight > 0`` adds the L1 of that residual output to the
loss (one extra decoder pass per step); the shipped run uses 0 (the paper's loss), because with the
extra term the network learned the identity first and the motion much later.

Optimiser: Adam (betas 0.9/0.999) as in the paper; the rate warms up linearly over
``warmup_steps`` to ``lr`` (3e-4, higher than the paper's constant 1e-4 for the short budget) and
then halves every ``lr_half_life`` steps (5000). The schedule does not depend on ``steps``, so a run's
checkpoint after ``n`` steps equals the result of ``steps=n``. Gradients are clipped to a global
norm of ``grad_clip`` as a guard (the net has no normalisation layers).

Bit-for-bit reproducibility: every batch is a pure function of ``(seed, step)``, the weights are
initialised from ``seed``, torch runs deterministic kernels, and the checkpoint bytes do not depend
on the output path; on the CPU the result is identical for identical ``threads`` (the reduction
order of the kernels depends on the thread count).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from merec.checkpoints import save_state_dict
from merec.config import Params
from merec.errors import MerecError
from merec.io import PathLike, write_csv, write_json
from merec.magnify.magnet import MagNet, parameter_count
from merec.magnify.training.pairs import PairBatch, PairConfig, make_batch
from merec.runtime import LOG, configure_torch, resolve_device, seed_everything

VALIDATION_STREAM = 7_919  # validation pairs: stream (seed + VALIDATION_STREAM, ...)
LOSS_COLUMNS = ("total", "l1", "l1_residual", "texture", "shape")
VALIDATION_SCORES = ("residual", "direct", "input")
CURVE_COLUMNS = ("step", "loss", *LOSS_COLUMNS[1:], "lr", "elapsed_s", "val_ssim", "val_ssim_direct", "val_ssim_input")


@dataclass(frozen=True)
class MagnetTrainParams(Params):
    """The ``magnet_train`` section of params.yaml (defaults and constraints: the params schema)."""

    section = "magnet_train"
    seed: int
    steps: int
    batch_size: int
    crop: int
    lr: float
    lr_half_life: int
    warmup_steps: int
    alpha_range: tuple[float, float]
    max_motion: float
    max_magnified: float
    max_noise: float
    lambda_consistency: float
    residual_weight: float
    grad_clip: float
    val_pairs: int
    val_every: int
    log_every: int
    save_every: int
    threads: int | None
    device: str

    def pair_config(self) -> PairConfig:
        """The pair generator's settings."""
        low, high = self.alpha_range
        return PairConfig(
            crop=self.crop,
            max_motion=self.max_motion,
            max_magnified=self.max_magnified,
            alpha_range=(float(low), float(high)),
            max_noise=self.max_noise,
        )


def batch_tensors(batch: PairBatch, device: str) -> dict[str, torch.Tensor]:
    """uint8 (N, H, W, 3) arrays -> float (N, 3, H, W) tensors in [-1, 1]; alpha as (N,)."""
    out = {}
    for name in ("frame_a", "frame_b", "frame_b_perturbed", "target", "target_perturbed"):
        array = torch.from_numpy(np.ascontiguousarray(getattr(batch, name)))
        out[name] = (array.permute(0, 3, 1, 2).float() / 127.5 - 1.0).to(device)
    out["alpha"] = torch.from_numpy(batch.alpha.astype(np.float32)).to(device)
    return out


def magnet_losses(
    model: MagNet,
    data: dict[str, torch.Tensor],
    lambda_consistency: float,
    residual_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Loss terms for one batch: ``total``, ``l1``, ``l1_residual``, ``texture`` and ``shape``.

    ``l1`` is the paper's L1 of the decoded output ``D(V_b', M~)``; ``l1_residual`` the L1 of the
    residual output ``b' + D(V_b', M~) - D(V_b', M_b')`` (computed only if ``residual_weight > 0``;
    both decodes share one batched decoder pass).
    """
    count = data["frame_a"].shape[0]
    stacked = torch.cat([data["frame_a"], data["frame_b"], data["frame_b_perturbed"]])
    texture, shape = model.encode(stacked)
    texture_a, texture_b, texture_bp = texture.split(count)
    shape_a, shape_b, shape_bp = shape.split(count)
    manipulated = model.manipulator(shape_a, shape_bp, data["alpha"])
    residual_output = None
    if residual_weight > 0:
        decoded = model.decoder(torch.cat([texture_bp, texture_bp]), torch.cat([manipulated, shape_bp]))
        output, reconstruction = decoded.split(count)
        residual_output = data["frame_b_perturbed"] + (output - reconstruction)
    else:
        output = model.decoder(texture_bp, manipulated)
    return loss_terms(
        output,
        data["target_perturbed"],
        texture_a,
        texture_b,
        shape_b,
        shape_bp,
        lambda_consistency,
        residual_output,
        residual_weight,
    )


def loss_terms(
    output: torch.Tensor,
    target: torch.Tensor,
    texture_a: torch.Tensor,
    texture_b: torch.Tensor,
    shape_b: torch.Tensor,
    shape_b_perturbed: torch.Tensor,
    lambda_consistency: float,
    residual_output: torch.Tensor | None = None,
    residual_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """``l1`` = L1(output, target), ``texture`` = L1(V_a, V_b), ``shape`` = L1(M_b, M_b'),
    ``l1_residual`` = L1(residual output, target); ``total`` weighs them together."""
    l1 = F.l1_loss(output, target)
    texture_loss = F.l1_loss(texture_a, texture_b)
    shape_loss = F.l1_loss(shape_b, shape_b_perturbed)
    total = l1 + lambda_consistency * (texture_loss + shape_loss)
    l1_residual = torch.zeros((), device=output.device)
    if residual_output is not None:
        l1_residual = F.l1_loss(residual_output, target)
        total = total + residual_weight * l1_residual
    return {
        "total": total,
        "l1": l1,
        "l1_residual": l1_residual,
        "texture": texture_loss,
        "shape": shape_loss,
    }


def learning_rate(step: int, lr: float, warmup_steps: int, half_life: int) -> float:
    """Linear warm-up over ``warmup_steps``, then ``lr`` halved every ``half_life`` steps.

    The schedule does not depend on the total number of steps, so the weights after ``n`` steps of
    a longer run are identical to those of a run with ``steps=n`` (``half_life=0``: constant).
    """
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if half_life <= 0:
        return lr
    return lr * 0.5 ** ((step - warmup_steps) / half_life)


def ssim_uint8(image: np.ndarray, reference: np.ndarray) -> float:
    """SSIM of two (H, W, 3) uint8 images (scikit-image, Gaussian window as Wang et al.)."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(image, reference, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5)
    )


def validation_set(seed: int, pairs: int, config: PairConfig) -> PairBatch:
    """Fixed held-out pairs (a different stream from training: ``seed + VALIDATION_STREAM``)."""
    return make_batch(seed + VALIDATION_STREAM, 0, pairs, config)


@torch.no_grad()
def validate(model: MagNet, batch: PairBatch, device: str, chunk: int = 16) -> dict[str, float]:
    """Mean SSIM against the targets: ``residual`` and ``direct`` outputs, and ``input`` (frame b)."""
    was_training = model.training
    model.eval()
    scores: dict[str, list[float]] = {"residual": [], "direct": [], "input": []}
    for start in range(0, len(batch.alpha), chunk):
        part = PairBatch(**{k: v[start : start + chunk] for k, v in vars(batch).items()})
        data = batch_tensors(part, device)
        for name, residual in (("residual", True), ("direct", False)):
            output = model(data["frame_a"], data["frame_b"], data["alpha"], residual, clip=True)
            images = ((output + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            scores[name].extend(ssim_uint8(image, part.target[i]) for i, image in enumerate(images))
        scores["input"].extend(ssim_uint8(part.frame_b[i], part.target[i]) for i in range(len(part.alpha)))
    model.train(was_training)
    return {name: float(np.mean(values)) for name, values in scores.items()}


@dataclass
class _Progress:
    """Running loss sums between log rows, the curve so far and the last validation scores."""

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LOSS_COLUMNS, 0.0))
    counted: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    last_val: dict[str, float] = field(default_factory=lambda: dict.fromkeys(VALIDATION_SCORES, math.nan))
    started: float = field(default_factory=time.perf_counter)

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for key in self.sums:
            self.sums[key] += float(losses[key].detach())
        self.counted += 1

    def row(self, step: int, rate: float, validated: bool) -> dict[str, float]:
        """Close the current log interval: its mean losses (and validation SSIM, when just measured)."""
        mean = {key: self.sums[key] / self.counted for key in self.sums}
        val = self.last_val if validated else dict.fromkeys(VALIDATION_SCORES, math.nan)
        row = {
            "step": step, "loss": mean["total"], **{key: mean[key] for key in LOSS_COLUMNS[1:]}, "lr": rate,
            "elapsed_s": round(self.elapsed(), 2), "val_ssim": val["residual"], "val_ssim_direct": val["direct"],
            "val_ssim_input": val["input"],
        }  # fmt: skip
        self.rows.append(row)
        self.sums, self.counted = dict.fromkeys(self.sums, 0.0), 0
        return row

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _log_row(row: dict[str, float], steps: int, validation: dict[str, float] | None) -> None:
    scores = (
        f" val SSIM residual {validation['residual']:.4f} direct {validation['direct']:.4f}"
        f" (input {validation['input']:.4f})"
        if validation
        else ""
    )
    LOG.info(
        "magnet-train step %d/%d loss %.4f (l1 %.4f residual %.4f tex %.4f shape %.4f) lr %.2e %.0fs%s",
        row["step"], steps, row["loss"], row["l1"], row["l1_residual"], row["texture"], row["shape"], row["lr"],
        row["elapsed_s"], scores,
    )  # fmt: skip


def output_files(checkpoint: PathLike) -> tuple[Path, Path, Path]:
    """The files a run writes for ``checkpoint`` (``magnet.pt``): it, ``magnet_curve.csv``, ``magnet_train.json``."""
    path = Path(checkpoint)
    if path.suffix != ".pt":
        raise MerecError(f"{path}: name the MagNet checkpoint to write with a .pt suffix, e.g. merec/weights/magnet.pt")
    return path, path.with_name(f"{path.stem}_curve.csv"), path.with_name(f"{path.stem}_train.json")


def _write_outputs(
    checkpoint: Path, model: MagNet, params: MagnetTrainParams, progress: _Progress, step: int, complete: bool
) -> None:
    """The checkpoint, its curve and its run record (``complete`` false for an interim save)."""
    weights, curve, record = output_files(checkpoint)
    save_state_dict(model, weights)
    write_csv(curve, pd.DataFrame(progress.rows, columns=list(CURVE_COLUMNS)))
    final = progress.rows[-1] if progress.rows else {}
    write_json(
        record,
        {
            "params": params.as_dict(),
            "data": params.pair_config().as_dict(),
            "complete": complete,
            "steps_done": step,
            "seed": params.seed,
            "device": str(next(model.parameters()).device.type),
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "parameters": parameter_count(model),
            "elapsed_s": round(progress.elapsed(), 1),
            "final": {
                **{key: final.get(key) for key in ("loss", *LOSS_COLUMNS[1:])},
                "val_ssim": progress.last_val["residual"],
                "val_ssim_direct": progress.last_val["direct"],
                "val_ssim_input": progress.last_val["input"],
            },
        },
    )


def _step(
    model: MagNet, optimiser: torch.optim.Optimizer, params: MagnetTrainParams, step: int, device: str
) -> dict[str, torch.Tensor]:
    """One optimisation step on batch ``step`` of the seed's pair stream; returns the loss terms."""
    rate = learning_rate(step, params.lr, params.warmup_steps, params.lr_half_life)
    for group in optimiser.param_groups:
        group["lr"] = rate
    data = batch_tensors(make_batch(params.seed, step, params.batch_size, params.pair_config()), device)
    losses = magnet_losses(model, data, params.lambda_consistency, params.residual_weight)
    if not torch.isfinite(losses["total"]):
        raise MerecError(
            f"magnet_train: loss became {losses['total'].item()} at step {step}; lower magnet_train.lr or grad_clip"
        )
    optimiser.zero_grad(set_to_none=True)
    losses["total"].backward()
    if params.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
    optimiser.step()
    return losses


def train_magnet(checkpoint: PathLike, params: MagnetTrainParams) -> Path:
    """Train MagNet from scratch; writes the checkpoint, ``<stem>_curve.csv`` and ``<stem>_train.json``.

    Each file is written atomically; ``save_every`` also rewrites the three during training (the run
    record then says ``"complete": false``), so a long run can be inspected. Returns the checkpoint.
    """
    output = output_files(checkpoint)[0]
    output.parent.mkdir(parents=True, exist_ok=True)
    configure_torch(params.threads)
    seed_everything(params.seed)
    device = resolve_device(params.device)
    model = MagNet().to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr, betas=(0.9, 0.999))
    validation = validation_set(params.seed, params.val_pairs, params.pair_config()) if params.val_pairs > 0 else None
    progress = _Progress()
    LOG.info(
        "magnet-train: %d steps, batch %d, crop %d, device %s, %s threads, %d parameters",
        params.steps, params.batch_size, params.crop, device, torch.get_num_threads(), parameter_count(model),
    )  # fmt: skip
    for step in range(params.steps):
        progress.add(_step(model, optimiser, params, step, device))
        done = step + 1
        validate_now = validation is not None and (done % params.val_every == 0 or done == params.steps)
        if validate_now:
            progress.last_val = validate(model, validation, device)
        if done % params.log_every == 0 or done == params.steps or validate_now:
            rate = learning_rate(step, params.lr, params.warmup_steps, params.lr_half_life)
            _log_row(progress.row(done, rate, validate_now), params.steps, progress.last_val if validate_now else None)
        if params.save_every and done % params.save_every == 0 and done < params.steps:
            _write_outputs(output, model, params, progress, done, complete=False)
    _write_outputs(output, model, params, progress, params.steps, complete=True)
    return output
