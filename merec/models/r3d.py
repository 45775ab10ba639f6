"""18-layer video ResNets (R3D-18 and R(2+1)D-18, Tran et al., CVPR 2018) on the grey frame volume.

The ``frames`` input (B, N, 1, V, V) is read as a (3, N, V, V) clip (the grey channel repeated
for the three colour channels the networks were designed for). As in the r3d_18 MER system this
model follows, the stem is followed by one extra 1x2x2 max pooling (``extra_pool``, a quarter of
the cost of every later layer), then the four residual stages (64, 128, 256, 512 channels; two
basic blocks each; stride 2 in time and space from the second stage on), global average pooling,
``dropout`` and a linear layer for the classes.

``arch: r3d_18`` uses full 3x3x3 convolutions and a 3x7x7 stem; ``r2plus1d_18`` factorises every
3x3x3 convolution into a 1x3x3 spatial and a 3x1x1 temporal one, with as many middle channels as
keep the parameter count of the full convolution (and a (2+1)D stem).

The module and parameter names are torchvision's (``torchvision.models.video``), so a state dict
of its ``r3d_18`` / ``r2plus1d_18`` (for example its Kinetics-400 weights, downloaded by the user:
nothing is downloaded here) loads with ``weights``: every backbone key and shape is checked, and
the file's own classifier (``fc.*``) is left out. The architecture is written here rather than
imported because torchvision's PyPI wheels are built against the CUDA torch and do not import
with the CPU torch build merec installs. A pretrained backbone expects RGB frames normalised by
Kinetics statistics; merec's inputs are grey levels scaled by their spread over the fold's
training clips, which fine-tuning adapts to. Trained from scratch by default.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from merec.checkpoints import load_state_dict
from merec.errors import MerecError

ARCHITECTURES = ("r3d_18", "r2plus1d_18")
STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride) of the four residual stages
BLOCKS_PER_STAGE = 2


def _conv(arch: str, inputs: int, outputs: int, middle: int, stride: int) -> nn.Module:
    """A 3x3x3 convolution (``r3d_18``) or its (2+1)D factorisation (``r2plus1d_18``)."""
    if arch == "r3d_18":
        return nn.Conv3d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
    return nn.Sequential(
        nn.Conv3d(inputs, middle, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(middle),
        nn.ReLU(inplace=True),
        nn.Conv3d(middle, outputs, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
    )


def _stem(arch: str) -> nn.Sequential:
    if arch == "r3d_18":
        return nn.Sequential(
            nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(45),
        nn.ReLU(inplace=True),
        nn.Conv3d(45, 64, (3, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


class BasicBlock3d(nn.Module):
    """Two convolutions with batch norm and a residual connection (projected when the shape changes)."""

    def __init__(self, arch: str, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        middle = (inputs * outputs * 27) // (inputs * 9 + 3 * outputs)  # (2+1)D: the 3x3x3 parameter count
        self.conv1 = nn.Sequential(
            _conv(arch, inputs, outputs, middle, stride), nn.BatchNorm3d(outputs), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(_conv(arch, outputs, outputs, middle, 1), nn.BatchNorm3d(outputs))
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv3d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm3d(outputs)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


class VideoResNet18(nn.Module):
    """The backbone: stem and four residual stages (``layer1`` .. ``layer4``), torchvision's names."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise MerecError(f"train.models.r3d.arch: {arch!r} is not one of {', '.join(ARCHITECTURES)}")
        self.stem = _stem(arch)
        width = 64
        for index, (channels, stride) in enumerate(STAGES, start=1):
            blocks = [BasicBlock3d(arch, width, channels, stride)]
            blocks += [BasicBlock3d(arch, channels, channels, 1) for _ in range(BLOCKS_PER_STAGE - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            width = channels
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class R3DNet(nn.Module):
    """R3D-18 or R(2+1)D-18 over the ``frames`` input."""

    inputs = ("frames",)

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        arch: str,
        weights: str,
        extra_pool: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        _, _, height, width = input_shapes["frames"]
        smallest = 16 if extra_pool else 8
        if min(height, width) < smallest:
            raise MerecError(
                f"train.models.r3d: a {height}x{width} frame volume is too small for {arch} "
                f"(at least {smallest} px{' with extra_pool' if extra_pool else ''}); "
                "use a larger features.volume_size"
            )
        self.backbone = VideoResNet18(arch)
        if weights:
            source = f"train.models.r3d.weights ({weights})"
            load_state_dict(self.backbone, weights, ignore_unexpected=("fc.",), source=source)
        self.pool = nn.MaxPool3d((1, 2, 2)) if extra_pool else nn.Identity()
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(dropout))
        self.classifier = nn.Linear(STAGES[-1][0], n_classes)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        clip = batch["frames"].transpose(1, 2).expand(-1, 3, -1, -1, -1)  # (B, 3, N, V, V)
        backbone = self.backbone
        x = self.pool(backbone.stem(clip))
        x = backbone.layer4(backbone.layer3(backbone.layer2(backbone.layer1(x))))
        return self.classifier(self.head(x))
