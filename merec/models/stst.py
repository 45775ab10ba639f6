"""STSTNet-style shallow triple-stream CNN (Liong et al., 2019) on onset-to-apex flow.

Three parallel 3x3 convolution streams with 3, 5 and 8 channels over the (u, v, strain) image,
each followed by ReLU, batch norm, 3x3 max pooling and dropout; the streams are concatenated,
average-pooled and classified by one linear layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


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
    ) -> None:
        super().__init__()
        channels, height, width = input_shapes["apex"]
        self.streams = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, w, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(w),
                nn.MaxPool2d(kernel_size=3, stride=3, padding=1),
                nn.Dropout(dropout),
            )
            for w in widths
        )
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        pooled = ((height + 2 - 3) // 3 + 1) // 2, ((width + 2 - 3) // 3 + 1) // 2
        self.classifier = nn.Linear(sum(widths) * pooled[0] * pooled[1], n_classes)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = batch["apex"]
        features = torch.cat([stream(x) for stream in self.streams], dim=1)
        return self.classifier(torch.flatten(self.pool(features), 1))
