"""MagNet: learned motion magnification (Oh et al., ECCV 2018), written for merec.

The network has three parts, all convolutions bias-free with reflect padding, images in [-1, 1]:

* :class:`Encoder`: 7x7 conv 16 + ReLU, 3x3 stride-2 conv 32 + ReLU, three residual blocks, then two
  branches: *texture* (3x3 stride-2 conv 32 + ReLU, two residual blocks: 1/4 resolution) and
  *shape* (two residual blocks: 1/2 resolution).
* :class:`Manipulator`: ``d = shape_b - shape_a``; ``shape_b + h((alpha - 1) * g(d))`` with
  ``g`` = 7x7 conv + ReLU and ``h`` = 3x3 conv + one residual block. The factor is ``alpha - 1``
  (as in Oh et al.'s paper): frame b already carries the motion once, the manipulator adds the
  missing ``alpha - 1`` times, so the output shows ``alpha`` times the a -> b motion, which is what
  the training targets of :mod:`merec.magnify.magnet_data` contain. ``alpha = 1`` (or ``a == b``)
  leaves ``shape_b`` untouched: the net then reconstructs frame b (residual decoding, below,
  returns frame b itself).
* :class:`Decoder`: texture upsampled x2 + 3x3 conv + ReLU, concatenated with the shape code
  (64 channels), nine residual blocks, upsampled x2, 3x3 conv 32 + ReLU, 7x7 conv to RGB; clipped to
  [-1, 1] at inference (training sees the unclipped output so the L1 gradient never vanishes).

:meth:`MagNet.magnify` offers the paper's output ``D(V_b, M~)`` or *residual decoding*
``frame_b + D(V_b, M~) - D(V_b, M_b)`` (merec's default at inference).

:class:`MagNetMagnifier` is the pipeline's ``magnet`` method (static mode: every frame against the
onset, frame 0). ``checkpoint=None`` uses the checkpoint shipped in ``merec/weights/magnet.pt``,
trained by :func:`merec.magnify.magnet_train.train_magnet` (provenance: ``magnet.json`` beside it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from merec.checkpoints import load_state_dict
from merec.errors import MerecError
from merec.magnify.params import MagnetParams
from merec.runtime import resolve_device

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED_CHECKPOINT = WEIGHTS_DIR / "magnet.pt"
#: ``magnify.magnet.checkpoint``'s default: the shipped weights, named as in a checkout of the repository.
SHIPPED_NAME = "merec/weights/magnet.pt"
MULTIPLE = 4  # two stride-2 stages: inputs are reflect-padded to a multiple of 4


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Reflect-padded, bias-free convolution."""
    return nn.Sequential(
        nn.ReflectionPad2d(kernel // 2),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=False),
    )


def _conv_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv(c_in, c_out, kernel, stride), nn.ReLU(inplace=True))


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 reflect-padded bias-free convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_relu(channels, channels, 3), _conv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _res_blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


class Encoder(nn.Module):
    """Image (N, 3, H, W) -> texture (N, 32, H/4, W/4) and shape (N, 32, H/2, W/2)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_relu(3, 16, 7), _conv_relu(16, 32, 3, stride=2), _res_blocks(32, 3))
        self.texture = nn.Sequential(_conv_relu(32, 32, 3, stride=2), _res_blocks(32, 2))
        self.shape = _res_blocks(32, 2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.stem(image)
        return self.texture(features), self.shape(features)


class Manipulator(nn.Module):
    """``shape_b + h((alpha - 1) * g(shape_b - shape_a))``."""

    def __init__(self) -> None:
        super().__init__()
        self.g = _conv_relu(32, 32, 7)
        self.h = nn.Sequential(_conv(32, 32, 3), ResBlock(32))

    def forward(self, shape_a: torch.Tensor, shape_b: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
        if isinstance(alpha, torch.Tensor):
            alpha = alpha.to(shape_b).reshape(-1, 1, 1, 1)
        return shape_b + self.h(self.g(shape_b - shape_a) * (alpha - 1.0))


class Decoder(nn.Module):
    """Texture + (manipulated) shape codes -> image (unclipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.texture = _conv_relu(32, 32, 3)
        self.blocks = _res_blocks(64, 9)
        self.out = nn.Sequential(_conv_relu(64, 32, 3), _conv(32, 3, 7))

    def forward(self, texture: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        texture = self.texture(F.interpolate(texture, scale_factor=2.0, mode="nearest"))
        x = self.blocks(torch.cat([texture, shape], dim=1))
        return self.out(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MagNet(nn.Module):
    """Encoder, manipulator and decoder; ``forward(a, b, alpha)`` magnifies the a -> b motion."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.manipulator = Manipulator()
        self.decoder = Decoder()

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Texture and shape codes of images in [-1, 1] whose sides are multiples of 4."""
        return self.encoder(image)

    def decode(self, texture: torch.Tensor, shape: torch.Tensor, clip: bool) -> torch.Tensor:
        """The decoder's image (the paper's output), optionally clipped to [-1, 1]."""
        out = self.decoder(texture, shape)
        return out.clamp(-1.0, 1.0) if clip else out

    def magnify(
        self,
        frame_b: torch.Tensor,
        texture_b: torch.Tensor,
        shape_a: torch.Tensor,
        shape_b: torch.Tensor,
        alpha: torch.Tensor | float,
        residual: bool,
        clip: bool,
    ) -> torch.Tensor:
        """Frame b with its a -> b motion magnified, from precomputed codes.

        ``residual=False`` is Oh et al.'s output ``D(V_b, M~)``. ``residual=True`` returns
        ``frame_b + D(V_b, M~) - D(V_b, M_b)``: only the change the manipulation makes to the
        decoded image is added to the input, so decoder reconstruction errors cancel and no motion
        (or ``alpha = 1``) returns frame b exactly. Both decodes share one batched decoder pass.
        """
        manipulated = self.manipulator(shape_a, shape_b, alpha)
        if not residual:
            return self.decode(texture_b, manipulated, clip=clip)
        decoded = self.decoder(torch.cat([texture_b, texture_b]), torch.cat([manipulated, shape_b]))
        change, reconstruction = decoded.split(frame_b.shape[0])
        out = frame_b + (change - reconstruction)
        return out.clamp(-1.0, 1.0) if clip else out

    def forward(
        self,
        frame_a: torch.Tensor,
        frame_b: torch.Tensor,
        alpha: torch.Tensor | float,
        residual: bool = True,
        clip: bool | None = None,
    ) -> torch.Tensor:
        """Magnify; ``clip`` defaults to ``not self.training``. Sides must be multiples of 4."""
        _, shape_a = self.encoder(frame_a)
        texture_b, shape_b = self.encoder(frame_b)
        clip = not self.training if clip is None else clip
        return self.magnify(frame_b, texture_b, shape_a, shape_b, alpha, residual, clip)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad the bottom/right of (N, C, H, W) to multiples of ``multiple``; (x, H, W)."""
    height, width = x.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, height, width


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [-1, 1] -> (T, H, W, 3) uint8 (rounded)."""
    scaled = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def checkpoint_path(checkpoint: str | Path | None) -> Path:
    """The file a ``magnify.magnet.checkpoint`` value names.

    A relative path is relative to the working directory. ``None`` and the default
    ``merec/weights/magnet.pt`` name the weights shipped with the package: where that relative path
    does not exist (a non-editable install, another working directory) the installed copy is used.
    """
    if not checkpoint:
        return SHIPPED_CHECKPOINT
    path = Path(checkpoint)
    if str(checkpoint) == SHIPPED_NAME and not path.is_file():
        return SHIPPED_CHECKPOINT
    return path


def load_magnet(checkpoint: str | Path | None = None, device: str = "cpu") -> MagNet:
    """A :class:`MagNet` in eval mode on ``device`` with ``checkpoint`` (see :func:`checkpoint_path`)."""
    path = checkpoint_path(checkpoint)
    if not path.is_file():
        if path != SHIPPED_CHECKPOINT:
            raise MerecError(
                f"{path}: MagNet checkpoint not found; fix magnify.magnet.checkpoint in "
                "params.yaml or train one with `merec magnet-train --output models/magnet`"
            )
        raise MerecError(
            f"{path}: the shipped MagNet checkpoint is missing. Train one with "
            "`merec magnet-train --output models/magnet` (merec.magnify.magnet_train.train_magnet) "
            "and set magnify.magnet.checkpoint: models/magnet/magnet.pt, or restore "
            "merec/weights/magnet.pt from the repository"
        )
    model = MagNet()
    load_state_dict(model, path)
    return model.to(device).eval()


class MagNetMagnifier:
    """Static-mode MagNet: every frame's motion relative to ``frames[0]`` amplified by ``alpha``.

    Options: :class:`merec.magnify.params.MagnetParams` (``checkpoint``, ``batch_size``, ``residual``).
    """

    def __init__(self, alpha: float, params: MagnetParams, device: str = "auto") -> None:
        self.alpha = float(alpha)
        self.batch_size = params.batch_size
        self.residual = params.residual
        self.bfloat16 = params.precision == "bfloat16"
        self.device = resolve_device(device)
        self.model = load_magnet(params.checkpoint, self.device)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise MerecError(
                f"MagNet expects frames of shape (T, H, W, 3) and dtype uint8, got {frames.shape} {frames.dtype}"
            )
        if len(frames) == 0:
            return frames.copy()
        out = np.empty_like(frames)
        # residual decoding returns the reference frame unchanged (no motion): skip its forward pass
        first = 1 if self.residual else 0
        out[:first] = frames[:first]
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], torch.bfloat16, enabled=self.bfloat16):
            reference, height, width = pad_to_multiple(to_tensor(frames[:1]).to(self.device))
            _, shape_a = self.model.encode(reference)
            for start in range(first, len(frames), self.batch_size):
                chunk = to_tensor(frames[start : start + self.batch_size]).to(self.device)
                chunk, _, _ = pad_to_multiple(chunk)
                texture_b, shape_b = self.model.encode(chunk)
                magnified = self.model.magnify(
                    chunk,
                    texture_b,
                    shape_a.expand_as(shape_b),
                    shape_b,
                    self.alpha,
                    residual=self.residual,
                    clip=True,
                )
                out[start : start + len(chunk)] = to_uint8(magnified[..., :height, :width].float())
        return out
