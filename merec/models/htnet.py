"""HTNet (Wang et al., Neurocomputing 2024): a hierarchical transformer over facial-region patches of
the onset-to-apex flow.

Input, as published: the ``apex`` map (u, v, strain) resized to ``input_size`` (28 px); four
square crops of half that side (14 px) centred on the right eye, the left eye and the two mouth
corners (from the sample's onset ``landmarks``, the centres clamped so each crop stays inside the
map), tiled two by two (eyes above, mouth corners below) into one ``input_size`` image: the nose and
the cheeks are left out.

Network: ``patch`` x ``patch`` patches embedded to ``dims[0]`` channels (a 4 x 4 token grid at 28
px), then one level per entry of ``dims``: ``depths[i]`` pre-norm transformer blocks (multi-head
self-attention with ``heads[i]`` heads of ``dims[i] // heads[i]`` channels, a ``mlp_ratio`` x
feed-forward layer with GELU), each level followed by an aggregation (3 x 3 convolution to the next
width, layer norm, 3 x 3 max pooling with stride 2) that halves the token grid; mean pooling,
layer norm and one linear layer give the logits. The published sizes (256/512/1024 channels, 3/6/12
heads, 2/2/10 blocks) make 139.6 M parameters.

Where the tokens attend (``blocks``): ``published`` reproduces the published code, whose blocks
hold one token each at every level, so self-attention reduces to a per-token projection;
``regions`` lets the tokens of each facial region attend to each other at the first level and all
tokens of a level attend to each other after that.

As for ``stst``, ``stabilise`` first subtracts the mean u and v over the face (head drift).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from merec.errors import MerecError
from merec.models.inputs import resized_maps, without_mean_motion

# landmark groups of the four regions, in tiling order: the image's left eye, right eye (the
# subject's right and left eye), then the mouth corners on the image's left and right
REGIONS = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (48,), (54,))


def region_image(apex: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) maps and (B, 68, 2) landmarks in [0, 1] -> the (B, C, S, S) tiling of the four
    S/2 crops around :data:`REGIONS` (eyes above, mouth corners below)."""
    batch, _, size, _ = apex.shape
    crop = size // 2
    offsets = torch.arange(crop, device=apex.device)
    samples = torch.arange(batch, device=apex.device)[:, None, None]
    tiles = []
    for points in REGIONS:
        centre = landmarks[:, list(points)].mean(dim=1) * size  # (B, 2): x, y
        start = torch.clamp(torch.round(centre - crop / 2), 0, size - crop).long()
        rows = (start[:, 1, None] + offsets)[:, :, None]
        columns = (start[:, 0, None] + offsets)[:, None, :]
        tiles.append(apex.permute(0, 2, 3, 1)[samples, rows, columns].permute(0, 3, 1, 2))
    top = torch.cat(tiles[:2], dim=3)
    bottom = torch.cat(tiles[2:], dim=3)
    return torch.cat([top, bottom], dim=2)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        inner = self.heads * self.head_dim
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (N, L, dim)
        n, length, _ = tokens.shape
        q, k, v = self.qkv(self.norm(tokens)).view(n, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mixed = nn.functional.scaled_dot_product_attention(q, k, v)  # (N, heads, L, head_dim)
        return self.out(mixed.transpose(1, 2).reshape(n, length, -1))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.attention = _Attention(dim, heads, dropout)
        self.feed_forward = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attention(tokens)
        return tokens + self.feed_forward(tokens)


class _Aggregate(nn.Module):
    """3 x 3 convolution to the next width, layer norm over channels, 3 x 3 max pooling with stride 2."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, out, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(out)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        grid = self.norm(self.conv(grid).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.pool(grid)


def _in_blocks(grid: torch.Tensor, block: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * blocks, block * block, C): the tokens of each block x block window."""
    b, c, h, w = grid.shape
    windows = grid.view(b, c, h // block, block, w // block, block).permute(0, 2, 4, 3, 5, 1)
    return windows.reshape(-1, block * block, c)


def _from_blocks(tokens: torch.Tensor, shape: torch.Size, block: int) -> torch.Tensor:
    b, c, h, w = shape
    windows = tokens.view(b, h // block, w // block, block, block, c).permute(0, 5, 1, 3, 2, 4)
    return windows.reshape(b, c, h, w)


class HTNet(nn.Module):
    """Hierarchical transformer on the four facial regions of the ``apex`` flow (needs ``landmarks``)."""

    inputs = ("apex", "landmarks")

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        input_size: int,
        patch: int,
        dims: Sequence[int],
        heads: Sequence[int],
        depths: Sequence[int],
        mlp_ratio: int,
        dropout: float,
        blocks: str,
        stabilise: bool,
    ) -> None:
        super().__init__()
        if not len(dims) == len(heads) == len(depths):
            raise MerecError(
                f"train.models.htnet: dims, heads and depths need one entry per level, got {len(dims)}, "
                f"{len(heads)} and {len(depths)}"
            )
        if input_size % 2 or (input_size // 2) % patch:
            raise MerecError(
                f"train.models.htnet: input_size {input_size} must be even and its half a multiple of patch {patch}"
            )
        if any(dim < head for dim, head in zip(dims, heads, strict=True)):
            raise MerecError(f"train.models.htnet: every level needs at least one channel per head ({dims}, {heads})")
        channels = input_shapes["apex"][0]
        self.input_size, self.stabilise, self.blocks = input_size, stabilise, blocks
        self.embed = nn.Conv2d(channels, dims[0], kernel_size=patch, stride=patch)
        grid = input_size // patch
        self.positions = nn.ParameterList()
        self.levels = nn.ModuleList()
        self.aggregates = nn.ModuleList()
        self.block_sizes: list[int] = []
        for level, (dim, head, depth) in enumerate(zip(dims, heads, depths, strict=True)):
            self.positions.append(nn.Parameter(torch.randn(1, dim, grid, grid) * 0.02))
            self.levels.append(nn.ModuleList(_Block(dim, head, mlp_ratio, dropout) for _ in range(depth)))
            if blocks == "published":
                self.block_sizes.append(1)
            else:  # the first level's blocks are the four regions, later levels one block
                self.block_sizes.append(grid // 2 if level == 0 else grid)
            if level + 1 < len(dims):
                self.aggregates.append(_Aggregate(dim, dims[level + 1]))
                grid = (grid - 1) // 2 + 1
        self.head = nn.Sequential(nn.LayerNorm(dims[-1]), nn.Linear(dims[-1], n_classes))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = batch["apex"]
        if self.stabilise:
            x = without_mean_motion(x, channel_dim=1, space_dims=(2, 3))
        x = region_image(resized_maps(x, self.input_size), batch["landmarks"])
        grid = self.embed(x)
        for level, blocks in enumerate(self.levels):
            grid = grid + self.positions[level]
            size = self.block_sizes[level]
            tokens = _in_blocks(grid, size)
            for block in blocks:
                tokens = block(tokens)
            grid = _from_blocks(tokens, grid.shape, size)
            if level < len(self.aggregates):
                grid = self.aggregates[level](grid)
        return self.head(grid.mean(dim=(2, 3)))
