"""CapsuleNet for micro-expressions (Van Quang et al., FG 2019) on the apex frame.

Input: the last frame of the ``frames`` volume (the apex, after magnification, grey levels),
resized to ``input_size`` (224 px as published, where the frame was RGB; the grey channel is
repeated for the three colour channels the trunk was designed for).

Network, as published (``width`` 64; a smaller width narrows the trunk and the 9 x 9 convolution
alike, for tests and quick runs): a ResNet-18 trunk up to its third stage with the max pooling after the
stem left out (224 px -> 28 x 28 x 256), a 9 x 9 convolution with 256 filters and ReLU, primary
capsules (a 9 x 9 convolution with stride 2 to 32 maps of 8-D capsules: 32 x 6 x 6 = 1,152
capsules at 224 px, squashed), and one 16-D capsule per class reached by ``routing`` (3)
iterations of dynamic routing by agreement. The length of a class capsule is that class's score.
The trunk's module names are torchvision's ``resnet18`` (``conv1``, ``bn1``, ``layer1`` ..
``layer3``), so a state dict of it (ImageNet weights, which the published system started from,
downloaded by the user: nothing is downloaded here) loads with ``weights``; every key and shape is
checked and the later layers of the file (``layer4``, ``fc``) are left out. Trained from scratch by
default.

Training uses the margin loss of capsule networks (``criterion``): for the true class
max(0, m+ - length)^2, for the others lambda max(0, length - m-)^2, with the published m+ 0.99,
m- 0.01, lambda 0.5 (``margin_positive``, ``margin_negative``, ``margin_weight``), each sample
weighted by its class weight. Class probabilities are the lengths normalised to sum to one.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional

from merec.checkpoints import load_state_dict
from merec.errors import MerecError

TRUNK_STAGES = ((1, 1), (2, 2), (4, 2))  # ResNet-18's first three stages: (channels / width, stride)


class BasicBlock(nn.Module):
    """ResNet's basic block (torchvision's names: conv1, bn1, conv2, bn2, downsample)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + shortcut)


class ResNetTrunk(nn.Module):
    """ResNet-18's stem (without its max pooling) and first three stages, stride 8 in all; ``width``
    channels in the stem (64 in ResNet-18), 2 and 4 times that in the later stages."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inputs = width
        for index, (factor, stride) in enumerate(TRUNK_STAGES, start=1):
            channels = factor * width
            blocks = (BasicBlock(inputs, channels, stride), BasicBlock(channels, channels, 1))
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            inputs = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


def squash(vectors: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shrink each vector's length into [0, 1) keeping its direction: |s|^2 / (1 + |s|^2) s / |s|."""
    squared = (vectors * vectors).sum(dim=dim, keepdim=True)
    return squared / (1.0 + squared) * vectors / torch.sqrt(squared + 1e-8)


def dynamic_routing(predictions: torch.Tensor, iterations: int) -> torch.Tensor:
    """Routing by agreement: (B, inputs, classes, D) predictions -> (B, classes, D) output capsules."""
    logits = torch.zeros(predictions.shape[:3], device=predictions.device, dtype=predictions.dtype)
    for iteration in range(iterations):
        couplings = torch.softmax(logits, dim=2)  # each input capsule shares itself among the classes
        outputs = squash((couplings.unsqueeze(-1) * predictions).sum(dim=1))
        if iteration + 1 < iterations:
            logits = logits + (predictions * outputs.unsqueeze(1)).sum(dim=-1)
    return outputs


def primary_grid(input_size: int, model: str) -> int:
    """Side of the primary-capsule grid for an ``input_size`` image (6 at 224 px): the trunk's stride
    of 8, a 9 x 9 convolution, a 9 x 9 convolution with stride 2."""
    grid = input_size // 8 - 8
    primary = (grid - 9) // 2 + 1
    if primary < 1:
        raise MerecError(
            f"train.models.{model}: input_size {input_size} leaves no primary capsules (the trunk, two 9x9 "
            "convolutions and a stride of 2 need at least 136 px; 224 as published)"
        )
    return primary


def resnet_trunk(width: int, weights: str, param: str) -> ResNetTrunk:
    """A ResNet-18 trunk, from scratch or from a torchvision ``resnet18`` state dict at ``weights``
    (``param`` names it in errors; the file's ``layer4`` and ``fc`` are left out)."""
    trunk = ResNetTrunk(width)
    if weights:
        load_state_dict(trunk, weights, ignore_unexpected=("layer4.", "fc."), source=f"{param} ({weights})")
    return trunk


def trunk_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """A (B, 1, H, W) grey image resized to ``size`` and repeated for the trunk's three channels."""
    if image.shape[-2:] != (size, size):
        image = functional.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
    return image.expand(-1, 3, -1, -1)


def class_routes(primary: int, n_classes: int) -> nn.Parameter:
    """The transformation matrices from each 8-D primary capsule (32 maps on a ``primary`` grid) to
    each 16-D class capsule."""
    return nn.Parameter(0.01 * torch.randn(32 * primary * primary, n_classes, 16, 8))


def class_capsule_lengths(maps: torch.Tensor, routes: torch.Tensor, routing: int) -> torch.Tensor:
    """(B, 32 * 8, P, P) primary-capsule maps -> (B, classes) lengths of the routed class capsules."""
    b, _, p, _ = maps.shape
    capsules = squash(maps.view(b, 32, 8, p, p).permute(0, 1, 3, 4, 2).reshape(b, -1, 8))
    predictions = torch.einsum("ncdk,bnk->bncd", routes, capsules)
    return dynamic_routing(predictions, routing).norm(dim=-1)


class MarginLoss(nn.Module):
    """The capsule margin loss on class-capsule lengths, each sample weighted by its class weight."""

    def __init__(self, weight: torch.Tensor, positive: float, negative: float, down_weight: float) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.positive, self.negative, self.down_weight = positive, negative, down_weight

    def forward(self, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        present = functional.one_hot(target, lengths.shape[1]).to(lengths.dtype)
        loss = present * functional.relu(self.positive - lengths) ** 2
        loss = loss + self.down_weight * (1 - present) * functional.relu(lengths - self.negative) ** 2
        weights = self.weight[target]
        return (loss.sum(dim=1) * weights).sum() / weights.sum().clamp_min(1e-12)


class CapsuleScores(nn.Module):
    """What capsule models share: their scores are class-capsule lengths, trained by the margin loss
    (``margins``: m+, m-, lambda, set by the model)."""

    margins: tuple[float, float, float]

    def _capsule_settings(self, model: str, input_size: int, routing: int, margins: tuple[float, float, float]) -> int:
        """Keep the input size, routing iterations and margins; the primary-capsule grid's side."""
        self.input_size, self.routing, self.margins = input_size, routing, margins
        return primary_grid(input_size, model)

    def criterion(self, weight: torch.Tensor) -> nn.Module:
        """The training loss on this model's outputs (capsule lengths)."""
        positive, negative, down_weight = self.margins
        return MarginLoss(weight, positive, negative, down_weight)

    @staticmethod
    def probabilities(lengths: torch.Tensor) -> torch.Tensor:
        """Class probabilities: the capsule lengths normalised to sum to one."""
        return lengths / lengths.sum(dim=1, keepdim=True).clamp_min(1e-12)


class CapsuleNet(CapsuleScores):
    """ResNet-18 trunk, primary capsules and class capsules over the apex frame."""

    inputs = ("frames",)

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        *,
        input_size: int,
        width: int,
        routing: int,
        weights: str,
        margin_positive: float,
        margin_negative: float,
        margin_weight: float,
    ) -> None:
        super().__init__()
        margins = (margin_positive, margin_negative, margin_weight)
        primary = self._capsule_settings("capsule", input_size, routing, margins)
        self.trunk = resnet_trunk(width, weights, "train.models.capsule.weights")
        channels = 4 * width  # 256 as published
        self.features = nn.Sequential(nn.Conv2d(channels, channels, 9), nn.ReLU(inplace=True))
        self.primary = nn.Conv2d(channels, 32 * 8, 9, stride=2)
        self.routes = class_routes(primary, n_classes)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = self.features(self.trunk(trunk_image(batch["frames"][:, -1], self.input_size)))  # the apex
        return class_capsule_lengths(self.primary(x), self.routes, self.routing)
