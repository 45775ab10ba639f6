"""OFF-ApexNet (Gan et al., Signal Processing: Image Communication 2019) on onset-to-apex flow.

Two streams, one on the horizontal flow ``u`` and one on the vertical flow ``v`` of the ``apex``
image resized to ``input_size`` (28 px as in the published setting): each is a 5x5 convolution with
6 filters, ReLU and 2x2 max pooling, then a 5x5 convolution with 16 filters, ReLU and 2x2 max
pooling (-> 16 x 7 x 7). The two are concatenated (1,568 features) and classified by two fully
connected layers of ``hidden`` units (ReLU, ``dropout``) and a linear output: about 2.66 M
parameters at the published sizes. No official code was released; the layer sizes follow the
paper's description as implemented in public re-implementations (facts only).

As for every merec model, ``stabilise`` (default) first subtracts the mean u and v over the face
(head drift); ``stabilise: false`` feeds the flow as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from merec.errors import MerecError
from merec.models.inputs import resized_maps, without_mean_motion


def _stream() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class OffApexNet(nn.Module):
    """Two-stream CNN over the ``u`` and ``v`` channels of the ``apex`` input (B, 3, F, F)."""

    inputs = ("apex",)

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        input_size: int,
        hidden: int,
        dropout: float,
        stabilise: bool,
    ) -> None:
        super().__init__()
        _, height, width = input_shapes["apex"]
        if input_size:
            height = width = input_size
        if min(height, width) < 4:
            raise MerecError(f"train.models.offapex: a {height}x{width} apex map is too small; use input_size >= 4")
        self.input_size = input_size
        self.stabilise = stabilise
        self.horizontal, self.vertical = _stream(), _stream()
        features = 2 * 16 * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(
            nn.Linear(features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = batch["apex"]
        if self.stabilise:
            x = without_mean_motion(x, channel_dim=1, space_dims=(2, 3))
        x = resized_maps(x, self.input_size)
        u, v = x[:, 0:1], x[:, 1:2]
        features = torch.cat([torch.flatten(self.horizontal(u), 1), torch.flatten(self.vertical(v), 1)], dim=1)
        return self.classifier(features)
