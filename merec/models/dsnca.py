"""DSNCA: a dual-stream capsule network on the aligned and the frontalized apex, fused by channel attention.

The published DSNCA system extends CapsuleNet (:mod:`merec.models.capsule`) with a second stream
that sees the apex re-rendered frontally by a licensed 3D face model (DECA / FLAME), to take away
head pose and occlusions such as glasses. Here the second stream reads the features stage's
``frontal`` input instead: the apex frame warped to a frontal view from its landmarks against a
generic 3D landmark shape, the turned-away half mirrored beyond a yaw threshold
(:func:`merec.frontalize.frontal_view`); nothing licensed is needed.

Network (the published code leaves its dual-stream class out, so the fusion is written from the
paper's description): each stream is CapsuleNet's front end, a ResNet-18 trunk to its third stage
(no max pooling after the stem) and a 9 x 9 convolution with ReLU, on its own image resized to
``input_size`` (224 px: 28 x 28 x 256 each at ``width`` 64). The two maps are concatenated
(512 channels) and reweighted by channel attention (squeeze and excitation: global average
pooling, a bottleneck of channels / ``attention_reduction``, ReLU, sigmoid gates), then primary
capsules (a 9 x 9 convolution with stride 2 to 32 maps of 8-D capsules: 1,152 at 224 px) and one
16-D class capsule per class by ``routing`` iterations of dynamic routing. Scores are class-capsule
lengths, trained with CapsuleNet's margin loss. ``weights``: a torchvision ``resnet18`` state dict
(for example ImageNet, downloaded by the user) loaded into both trunks; from scratch by default.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from merec.models.capsule import (
    CapsuleScores,
    class_capsule_lengths,
    class_routes,
    resnet_trunk,
    trunk_image,
)


class ChannelAttention(nn.Module):
    """Squeeze and excitation: each channel scaled by a gate computed from all channels' means."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)[:, :, None, None]


class DSNCANet(CapsuleScores):
    """Two capsule front ends (aligned apex, frontal apex), channel attention, shared class capsules."""

    inputs = ("frames", "frontal")

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        input_size: int,
        width: int,
        routing: int,
        attention_reduction: int,
        weights: str,
        margin_positive: float,
        margin_negative: float,
        margin_weight: float,
    ) -> None:
        super().__init__()
        margins = (margin_positive, margin_negative, margin_weight)
        primary = self._capsule_settings("dsnca", input_size, routing, margins)
        channels = 4 * width  # 256 per stream as published
        self.streams = nn.ModuleDict()
        for name in ("aligned", "frontal"):
            trunk = resnet_trunk(width, weights, "train.models.dsnca.weights")
            features = nn.Sequential(nn.Conv2d(channels, channels, 9), nn.ReLU(inplace=True))
            self.streams[name] = nn.Sequential(trunk, features)
        self.attention = ChannelAttention(2 * channels, attention_reduction)
        self.primary = nn.Conv2d(2 * channels, 32 * 8, 9, stride=2)
        self.routes = class_routes(primary, n_classes)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images = {"aligned": batch["frames"][:, -1], "frontal": batch["frontal"]}  # (B, 1, V, V) apexes
        maps = [stream(trunk_image(images[name], self.input_size)) for name, stream in self.streams.items()]
        fused = self.attention(torch.cat(maps, dim=1))
        return class_capsule_lengths(self.primary(fused), self.routes, self.routing)
