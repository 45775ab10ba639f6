"""SE-DenseNet3D ("T3D" MER system): a small 3D DenseNet with squeeze-excitation on the frame volume.

The ``frames`` input (B, N, 1, V, V), the clip's grey frames from onset to apex, is read as a
(1, N, V, V) volume. A stem (3x3x3 convolution with ``stem`` filters and stride 2, batch norm,
ReLU, 3x3x3 max pooling with stride 2) is followed by ``blocks`` dense blocks of
``layers_per_block`` bottleneck layers (batch norm, ReLU, 1x1x1 convolution to 4 x ``growth``,
batch norm, ReLU, 3x3x3 convolution to ``growth``, dropout; each layer's output is concatenated
to its input). A squeeze-excitation gate (global max pool, bottleneck ``se_ratio``, sigmoid
channel weights) follows every dense block and every transition (batch norm, ReLU, 1x1x1
convolution, 2x2x2 max pooling; a dimension already reduced to 1 is not pooled). Global max
pooling and one linear layer give the logits. The published system (Keras) used depth 7 (three
blocks of one layer), growth 12, a 24-filter stem, SE ratio 8 and dropout 0.1 on 20 grey 64x64
frames; those are the defaults here, on the ``interpolate.frames`` frames the pipeline makes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional

from merec.errors import MerecError


class MaxExcite3d(nn.Module):
    """Squeeze-excitation with a global *max* pool, as in the T3D system."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(torch.amax(x, dim=(2, 3, 4)))
        return x * weights.view(*weights.shape, 1, 1, 1)


class DenseLayer3d(nn.Module):
    """Bottleneck layer whose ``growth`` new channels are concatenated to its input."""

    def __init__(self, channels: int, growth: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm3d(channels),
            nn.ReLU(),
            nn.Conv3d(channels, 4 * growth, 1, bias=False),
            nn.BatchNorm3d(4 * growth),
            nn.ReLU(),
            nn.Conv3d(4 * growth, growth, 3, padding=1, bias=False),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class Transition3d(nn.Module):
    """Batch norm, ReLU, 1x1x1 convolution, then 2x2x2 max pooling of the dimensions longer than 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm3d(channels), nn.ReLU(), nn.Conv3d(channels, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        return functional.max_pool3d(x, tuple(min(2, size) for size in x.shape[2:]))


class T3DNet(nn.Module):
    """SE-DenseNet3D over the ``frames`` input."""

    inputs = ("frames",)

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        stem: int,
        blocks: int,
        layers_per_block: int,
        growth: int,
        se_ratio: int,
        dropout: float,
    ) -> None:
        super().__init__()
        frames, channels, height, width = input_shapes["frames"]
        if min(frames, height, width) < 3:
            raise MerecError(
                f"train.models.t3d: a {frames}-frame {height}x{width} volume is too small for its 3x3x3 stem; "
                "use more interpolate.frames or a larger features.volume_size"
            )
        layers: list[nn.Module] = [
            nn.Conv3d(channels, stem, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm3d(stem),
            nn.ReLU(),
            nn.MaxPool3d(3, stride=2, padding=1),
        ]
        width_now = stem
        for block in range(blocks):
            for _ in range(layers_per_block):
                layers.append(DenseLayer3d(width_now, growth, dropout))
                width_now += growth
            layers.append(MaxExcite3d(width_now, se_ratio))
            if block < blocks - 1:
                layers += [Transition3d(width_now), MaxExcite3d(width_now, se_ratio)]
        self.features = nn.Sequential(*layers, nn.BatchNorm3d(width_now), nn.ReLU())
        self.classifier = nn.Linear(width_now, n_classes)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        volume = batch["frames"].transpose(1, 2)  # (B, 1, N, V, V)
        return self.classifier(torch.amax(self.features(volume), dim=(2, 3, 4)))
