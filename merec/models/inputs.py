"""Input conditioning shared by the recognition models: drift removal and resizing of flow maps."""

from __future__ import annotations

import torch
from torch.nn import functional


def without_mean_motion(flow: torch.Tensor, channel_dim: int, space_dims: tuple[int, ...]) -> torch.Tensor:
    """``flow`` with the mean u and v over ``space_dims`` subtracted (mostly head drift); strain kept.

    Channels 0 and 1 along ``channel_dim`` are u and v; any further channel (strain) is unchanged.
    """
    motion = flow.narrow(channel_dim, 0, 2)
    rest = flow.narrow(channel_dim, 2, flow.shape[channel_dim] - 2)
    return torch.cat([motion - motion.mean(dim=space_dims, keepdim=True), rest], dim=channel_dim)


def resized_maps(maps: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) maps resized to ``size`` x ``size`` (area averaging down, bilinear up); 0 keeps them."""
    if size == 0 or maps.shape[-2:] == (size, size):
        return maps
    mode = "area" if min(maps.shape[-2:]) >= size else "bilinear"
    options = {} if mode == "area" else {"align_corners": False}
    return functional.interpolate(maps, size=(size, size), mode=mode, **options)
