"""STSTNet (Liong et al., FG 2019): the shallow triple-stream CNN on onset-to-apex flow, as published.

The ``apex`` image (u, v, optical strain) is resized to ``input_size`` (28 px as published; 0 keeps
``features.face_size``). Three parallel 3x3 convolutions with 3, 5 and 8 filters and padding 2
(28 -> 30 px), each followed by ReLU, batch norm, 3x3 max pooling with stride 3 and padding 1
(-> 10 px) and dropout, are concatenated (16 channels), average-pooled 2x2 (-> 5 px) and classified
by one linear layer (400 -> classes): 1,683 parameters for 3 classes, as in the published code.

One departure by default, the benchmark's rule that every model sees the same input
stabilisation: with ``stabilise`` the mean u and v over the face (mostly head drift) is subtracted
first. ``stabilise: false`` is the published network exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from merec.errors import MerecError
from merec.models.inputs import resized_maps, without_mean_motion

PADDING = 2


class STSTNet(nn.Module):
    """Shallow triple-stream network on the ``apex`` input (B, 3, F, F)."""

    inputs = ("apex",)

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        widths: Sequence[int],
        dropout: float,
        input_size: int,
        stabilise: bool,
    ) -> None:
        super().__init__()
        channels, height, width = input_shapes["apex"]
        if input_size:
            height = width = input_size
        if min(height, width) < 3:
            raise MerecError(f"train.models.stst: a {height}x{width} apex map is too small; use input_size >= 3")
        self.input_size = input_size
        self.stabilise = stabilise
        self.streams = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, w, kernel_size=3, padding=PADDING),
                nn.ReLU(),
                nn.BatchNorm2d(w),
                nn.MaxPool2d(kernel_size=3, stride=3, padding=1),
                nn.Dropout(dropout),
            )
            for w in widths
        )
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        convolved = height + 2 * PADDING - 2, width + 2 * PADDING - 2
        pooled = [((size + 2 - 3) // 3 + 1) // 2 for size in convolved]
        self.classifier = nn.Linear(sum(widths) * pooled[0] * pooled[1], n_classes)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = batch["apex"]
        if self.stabilise:
            x = without_mean_motion(x, channel_dim=1, space_dims=(2, 3))
        x = resized_maps(x, self.input_size)
        features = torch.cat([stream(x) for stream in self.streams], dim=1)
        return self.classifier(torch.flatten(self.pool(features), 1))
