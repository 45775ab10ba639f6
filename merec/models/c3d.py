"""Compact 3D CNN over the whole-face flow stack, with optional squeeze-and-excitation.

The ``face`` input (B, T, 3, F, F) is read as a (3, T, F, F) volume. With ``stabilise`` (default
on) each frame's mean u and v over the face (mostly head motion) is subtracted first. Each block is a 3x3x3
convolution, batch norm and ReLU, optionally followed by a squeeze-and-excitation gate (global
average pool, bottleneck MLP with ``se_reduction``, sigmoid channel weights; Hu et al., 2018), then
a max pool: the first block pools space only (1, 2, 2), later ones time and space (2, 2, 2). The
last map is average-pooled to (1, ``pool``, ``pool``) so that *where* on the face motion happens
is kept, flattened, dropped out and classified by one linear layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from merec.errors import MerecError
from merec.models.inputs import without_mean_motion


class SqueezeExcite3d(nn.Module):
    """Channel gating from globally pooled features."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x).view(x.shape[0], x.shape[1], 1, 1, 1)


class C3DNet(nn.Module):
    """3D convolutions over (time, height, width) of the ``face`` input."""

    inputs = ("face",)

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        widths: Sequence[int],
        se: bool,
        se_reduction: int,
        pool: int,
        dropout: float,
        stabilise: bool,
    ) -> None:
        super().__init__()
        frames, channels, height, width = input_shapes["face"]
        if min(height, width) < 2 ** len(widths):
            raise MerecError(
                f"train.models.c3d: {len(widths)} blocks halve the {height}x{width} face map too often; "
                "use fewer widths or a larger features.face_size"
            )
        blocks: list[nn.Module] = []
        previous = channels
        for i, w in enumerate(widths):
            blocks += [nn.Conv3d(previous, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU()]
            if se:
                blocks.append(SqueezeExcite3d(w, se_reduction))
            time_pool = 2 if i > 0 and frames >= 2 ** (i + 1) else 1
            blocks.append(nn.MaxPool3d((time_pool, 2, 2)))
            previous = w
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d((1, pool, pool))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(previous * pool * pool, n_classes)
        self.stabilise = stabilise

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        face = batch["face"]
        if self.stabilise:
            face = without_mean_motion(face, channel_dim=2, space_dims=(3, 4))
        volume = face.transpose(1, 2)  # (B, 3, T, F, F)
        return self.classifier(self.dropout(torch.flatten(self.pool(self.features(volume)), 1)))
