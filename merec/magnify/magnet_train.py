"""Training loop for MagNet on the synthetic pairs of :mod:`merec.magnify.magnet_data`.

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

import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from merec.io import MerecError, PathLike, atomic_path, write_csv, write_json
from merec.magnify.magnet import MagNet, parameter_count
from merec.magnify.magnet_data import PairBatch, PairConfig, make_batch
from merec.runtime import LOG, configure_torch, resolve_device, seed_everything

VALIDATION_STREAM = 7_919  # validation pairs: stream (seed + VALIDATION_STREAM, ...)


def save_checkpoint(model: torch.nn.Module, path: PathLike) -> None:
    """Save a CPU state dict atomically with byte-identical output for identical weights.

    ``torch.save`` names the zip archive's root folder after the file it writes to; saving to an
    in-memory buffer first fixes that name (``archive``), so the random temporary name of the atomic
    write does not leak into the bytes (DVC hashes stay stable across identical runs).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


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


def train_magnet(
    output_dir: PathLike,
    *,
    seed: int = 0,
    steps: int = 20000,
    batch_size: int = 4,
    crop: int = 64,
    lr: float = 3e-4,
    lr_half_life: int = 5000,
    warmup_steps: int = 500,
    alpha_range: tuple[float, float] | list[float] = (1.0, 100.0),
    max_motion: float = 2.0,
    max_magnified: float = 12.0,
    max_noise: float = 2.0,
    lambda_consistency: float = 0.1,
    residual_weight: float = 0.0,
    grad_clip: float = 1.0,
    val_pairs: int = 32,
    val_every: int = 1000,
    log_every: int = 50,
    save_every: int = 1000,
    threads: int | None = 1,
    device: str = "auto",
) -> Path:
    """Train MagNet from scratch; writes ``magnet.pt``, ``curve.csv`` and ``train.json`` atomically.

    ``save_every`` also rewrites the three files during training (``train.json`` then says
    ``"complete": false``), so a long run can be inspected. Returns the path of ``magnet.pt``.
    """
    params: dict[str, Any] = {
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "crop": crop,
        "lr": lr,
        "lr_half_life": lr_half_life,
        "warmup_steps": warmup_steps,
        "alpha_range": [float(a) for a in alpha_range],
        "max_motion": max_motion,
        "max_magnified": max_magnified,
        "max_noise": max_noise,
        "lambda_consistency": lambda_consistency,
        "residual_weight": residual_weight,
        "grad_clip": grad_clip,
        "val_pairs": val_pairs,
        "val_every": val_every,
        "log_every": log_every,
        "save_every": save_every,
        "threads": threads,
        "device": device,
    }
    if steps < 1 or batch_size < 1 or log_every < 1:
        raise MerecError("magnet_train: steps, batch_size and log_every must be >= 1")
    if len(params["alpha_range"]) != 2:
        raise MerecError(f"magnet_train.alpha_range must be [low, high], got {alpha_range!r}")
    config = PairConfig(
        crop=crop,
        max_motion=max_motion,
        max_magnified=max_magnified,
        alpha_range=(params["alpha_range"][0], params["alpha_range"][1]),
        max_noise=max_noise,
    )
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    configure_torch(threads)
    seed_everything(seed)
    resolved = resolve_device(device)
    model = MagNet().to(resolved).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    validation = validation_set(seed, val_pairs, config) if val_pairs > 0 else None

    rows: list[dict[str, float]] = []
    sums = dict.fromkeys(LOSS_COLUMNS, 0.0)
    counted = 0
    last_val = dict.fromkeys(("residual", "direct", "input"), math.nan)
    started = time.perf_counter()
    LOG.info(
        "magnet-train: %d steps, batch %d, crop %d, device %s, %s threads, %d parameters",
        steps,
        batch_size,
        crop,
        resolved,
        torch.get_num_threads(),
        parameter_count(model),
    )

    def write_outputs(step: int, complete: bool) -> None:
        import pandas as pd

        save_checkpoint(model, output / "magnet.pt")
        write_csv(output / "curve.csv", pd.DataFrame(rows, columns=list(CURVE_COLUMNS)))
        final = rows[-1] if rows else {}
        write_json(
            output / "train.json",
            {
                "params": params,
                "data": config.as_dict(),
                "complete": complete,
                "steps_done": step,
                "seed": seed,
                "device": resolved,
                "torch_threads": torch.get_num_threads(),
                "torch_version": torch.__version__,
                "parameters": parameter_count(model),
                "elapsed_s": round(time.perf_counter() - started, 1),
                "final": {
                    **{key: final.get(key) for key in ("loss", *LOSS_COLUMNS[1:])},
                    "val_ssim": last_val["residual"],
                    "val_ssim_direct": last_val["direct"],
                    "val_ssim_input": last_val["input"],
                },
            },
        )

    for step in range(steps):
        rate = learning_rate(step, lr, warmup_steps, lr_half_life)
        for group in optimiser.param_groups:
            group["lr"] = rate
        data = batch_tensors(make_batch(seed, step, batch_size, config), resolved)
        losses = magnet_losses(model, data, lambda_consistency, residual_weight)
        if not torch.isfinite(losses["total"]):
            raise MerecError(
                f"magnet_train: loss became {losses['total'].item()} at step {step}; lower magnet_train.lr or grad_clip"
            )
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimiser.step()
        for key in sums:
            sums[key] += float(losses[key].detach())
        counted += 1
        done = step + 1
        validate_now = validation is not None and (done % val_every == 0 or done == steps)
        if validate_now:
            last_val = validate(model, validation, resolved)
        if done % log_every == 0 or done == steps or validate_now:
            row = {
                "step": done,
                "loss": sums["total"] / counted,
                **{key: sums[key] / counted for key in LOSS_COLUMNS[1:]},
                "lr": rate,
                "elapsed_s": round(time.perf_counter() - started, 2),
                "val_ssim": last_val["residual"] if validate_now else math.nan,
                "val_ssim_direct": last_val["direct"] if validate_now else math.nan,
                "val_ssim_input": last_val["input"] if validate_now else math.nan,
            }
            rows.append(row)
            LOG.info(
                "magnet-train step %d/%d loss %.4f (l1 %.4f residual %.4f tex %.4f shape %.4f) lr %.2e %.0fs%s",
                done,
                steps,
                row["loss"],
                row["l1"],
                row["l1_residual"],
                row["texture"],
                row["shape"],
                rate,
                row["elapsed_s"],
                (
                    f" val SSIM residual {last_val['residual']:.4f} direct {last_val['direct']:.4f}"
                    f" (input {last_val['input']:.4f})"
                )
                if validate_now
                else "",
            )
            sums = dict.fromkeys(sums, 0.0)
            counted = 0
        if save_every and done % save_every == 0 and done < steps:
            write_outputs(done, complete=False)
    write_outputs(steps, complete=True)
    return output / "magnet.pt"


LOSS_COLUMNS = ("total", "l1", "l1_residual", "texture", "shape")
CURVE_COLUMNS = (
    "step",
    "loss",
    *LOSS_COLUMNS[1:],
    "lr",
    "elapsed_s",
    "val_ssim",
    "val_ssim_direct",
    "val_ssim_input",
)
