"""RIFE HDv3 IFNet: intermediate-flow estimation for frame interpolation (merec's own code).

The network follows the HDv3 release of RIFE (Huang et al., ECCV 2022) closely enough to run its
published weights: three :class:`IFBlock` (width 90, 11 input channels) applied coarse to fine at
scales ``[4, 2, 1] / scale``, each run on both temporal orders of the pair and averaged,
backward warping with ``grid_sample`` and a sigmoid occlusion mask merging the two warped
frames at ``t = 0.5``.
Module and parameter names match the checkpoint (``block0.conv0.0.0.weight`` ...), including the
training-only teacher block ``block_tea``, so a state dict is loaded with a complete key check.

Differences from the reference code that do not change the result (beyond float rounding): the two
temporal orders go through each block as one batch, both frames are warped in one ``grid_sample``,
only the last level's merged frame is built, and resizing at scale 1 is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WIDTH = 90
#: Scales of the three student levels at ``scale = 1`` (input resized by ``1 / level_scale``).
LEVEL_SCALES = (4.0, 2.0, 1.0)


def _conv_prelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution with bias followed by a per-channel PReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=True),
        nn.PReLU(out_channels),
    )


def _up_head(width: int, out_channels: int) -> nn.Sequential:
    """Two stride-2 transposed convolutions (x4 upsampling) with a PReLU between them."""
    return nn.Sequential(
        nn.ConvTranspose2d(width, width // 2, kernel_size=4, stride=2, padding=1),
        nn.PReLU(width // 2),
        nn.ConvTranspose2d(width // 2, out_channels, kernel_size=4, stride=2, padding=1),
    )


def _resize(x: Tensor, factor: float) -> Tensor:
    """Bilinear resize by ``factor`` (the reference's ``scale_factor`` semantics, no recompute)."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=False)


class IFBlock(nn.Module):
    """One level of IFNet: predicts a flow residual (4 channels) and a mask residual (1 channel)."""

    #: Layout of the convolution activations (see ``docs/interpolation.md``, speed).
    memory_format: torch.memory_format = torch.channels_last

    def __init__(self, in_channels: int, width: int = WIDTH) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(
            _conv_prelu(in_channels, width // 2, stride=2), _conv_prelu(width // 2, width, stride=2)
        )
        self.convblock0 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.convblock1 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.convblock2 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.convblock3 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.conv1 = _up_head(width, 4)
        self.conv2 = _up_head(width, 1)

    def forward(self, x: Tensor, flow: Tensor, scale: float = 1.0) -> tuple[Tensor, Tensor]:
        """``x`` (N, C-4, H, W) and ``flow`` (N, 4, H, W) at full size -> (flow, mask) residuals."""
        if scale != 1.0:
            x = _resize(x, 1.0 / scale)
            flow = _resize(flow, 1.0 / scale) * (1.0 / scale)
        feat = self.conv0(torch.cat((x, flow), 1).contiguous(memory_format=self.memory_format))
        feat = self.convblock0(feat) + feat
        feat = self.convblock1(feat) + feat
        feat = self.convblock2(feat) + feat
        feat = self.convblock3(feat) + feat
        flow = self.conv1(feat)
        mask = self.conv2(feat)
        if scale != 1.0:
            flow = _resize(flow, scale) * scale
            mask = _resize(mask, scale)
        return flow, mask


_GRIDS: dict[tuple[str, torch.dtype, int, int], Tensor] = {}


def base_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Identity sampling grid (1, 2, H, W) in [-1, 1] (x then y), cached per size and device.

    The linspace is computed in float32 (as the reference does) and then cast, so float64 runs
    agree with the reference to ~1e-12; float32 runs are unaffected.
    """
    key = (str(device), dtype, height, width)
    grid = _GRIDS.get(key)
    if grid is None:
        xs = torch.linspace(-1.0, 1.0, width, device=device).to(dtype).view(1, 1, 1, width)
        ys = torch.linspace(-1.0, 1.0, height, device=device).to(dtype).view(1, 1, height, 1)
        grid = torch.cat((xs.expand(1, 1, height, width), ys.expand(1, 1, height, width)), 1)
        _GRIDS[key] = grid
    return grid


def backward_warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` (N, C, H, W) at ``x + flow`` (flow (N, 2, H, W) in pixels, x then y).

    Flow is normalised by ``(W - 1) / 2`` and ``(H - 1) / 2`` and added to a ``linspace(-1, 1)``
    grid; sampling is bilinear with border padding and ``align_corners=True``.
    """
    height, width = flow.shape[2], flow.shape[3]
    norm = torch.cat(
        (
            flow[:, 0:1] / ((image.shape[3] - 1.0) / 2.0),
            flow[:, 1:2] / ((image.shape[2] - 1.0) / 2.0),
        ),
        1,
    )
    grid = (base_grid(height, width, flow.device, flow.dtype) + norm).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def swap_flow(flow: Tensor) -> Tensor:
    """Exchange the two 2-channel halves (``t->0`` and ``t->1``) of a 4-channel flow."""
    return torch.cat((flow[:, 2:4], flow[:, 0:2]), 1)


@dataclass
class IFNetOutput:
    """Result of one IFNet pass at ``t = 0.5`` (all at the network's input size)."""

    flow: Tensor  #: (N, 4, H, W) backward flows in pixels: middle -> frame 0, middle -> frame 1
    mask: Tensor  #: (N, 1, H, W) mask logits; sigmoid gives the weight of warped frame 0
    merged: Tensor  #: (N, 3, H, W) interpolated middle frame in [0, 1]


def pad_multiple(scale: float = 1.0) -> int:
    """Height and width must be multiples of this (32; more when ``scale`` < 1)."""
    return max(32, int(32 / scale))


class IFNet(nn.Module):
    """HDv3 IFNet (student blocks ``block0..2`` plus the training-only teacher ``block_tea``)."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = IFBlock(7 + 4, WIDTH)
        self.block1 = IFBlock(7 + 4, WIDTH)
        self.block2 = IFBlock(7 + 4, WIDTH)
        # Teacher block of the distillation setup: never run at inference, kept so that the
        # published checkpoint loads with a complete key and shape check.
        self.block_tea = IFBlock(10 + 4, WIDTH)

    def forward(self, img0: Tensor, img1: Tensor, scale: float = 1.0) -> IFNetOutput:
        """Interpolate the middle of ``img0`` and ``img1`` (N, 3, H, W) RGB in [0, 1].

        H and W must be multiples of :func:`pad_multiple` (``scale``); see :meth:`interpolate`.
        """
        multiple = pad_multiple(scale)
        if img0.shape[2] % multiple or img0.shape[3] % multiple or img0.shape != img1.shape:
            raise ValueError(
                f"IFNet needs two images of the same size, a multiple of {multiple} at scale {scale}: "
                f"got {tuple(img0.shape)} and {tuple(img1.shape)}; use IFNet.interpolate to pad"
            )
        n = img0.shape[0]
        flow = img0.new_zeros((n, 4, img0.shape[2], img0.shape[3]))
        mask = img0.new_zeros((n, 1, img0.shape[2], img0.shape[3]))
        warped0, warped1 = img0, img1
        pair = torch.cat((img0, img1), 0)
        for block, level in zip((self.block0, self.block1, self.block2), LEVEL_SCALES, strict=True):
            # Both temporal orders in one batch: (w0, w1, m; f) and (w1, w0, -m; swapped f).
            x = torch.cat((torch.cat((warped0, warped1, mask), 1), torch.cat((warped1, warped0, -mask), 1)), 0)
            flows, masks = block(x, torch.cat((flow, swap_flow(flow)), 0), scale=level / scale)
            flow = flow + (flows[:n] + swap_flow(flows[n:])) / 2
            mask = mask + (masks[:n] + (-masks[n:])) / 2
            warped = backward_warp(pair, torch.cat((flow[:, 0:2], flow[:, 2:4]), 0))
            warped0, warped1 = warped[:n], warped[n:]
        weight = torch.sigmoid(mask)
        merged = warped0 * weight + warped1 * (1 - weight)
        return IFNetOutput(flow=flow, mask=mask, merged=merged)

    def interpolate(self, img0: Tensor, img1: Tensor, scale: float = 1.0) -> IFNetOutput:
        """:meth:`forward` on any size: zero-pads right/bottom to :func:`pad_multiple`, crops."""
        height, width = img0.shape[2], img0.shape[3]
        multiple = pad_multiple(scale)
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            img0 = F.pad(img0, (0, pad_w, 0, pad_h))
            img1 = F.pad(img1, (0, pad_w, 0, pad_h))
        out = self.forward(img0, img1, scale)
        if pad_h or pad_w:
            out = IFNetOutput(
                flow=out.flow[:, :, :height, :width],
                mask=out.mask[:, :, :height, :width],
                merged=out.merged[:, :, :height, :width],
            )
        return out
