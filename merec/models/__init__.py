"""Recognition models, chosen by ``train.model``.

Every model takes a batch dict of float tensors built from the features stage:

* ``apex`` (B, 3, F, F): whole-face u, v, strain from onset to apex (the last frame);
* ``face`` (B, T, 3, F, F): whole-face flow for every interpolated frame;
* ``rois`` (B, R, T, 3, S, S): ROI flow tensors;
* ``adjacency`` (K, K): the fold's AU graph (same for the whole batch);

and returns class logits (B, n_classes). ``input_shapes`` gives the per-sample shapes of the first
three, so models can size their layers without lazy modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from merec.io import MerecError

MODELS = ("stst",)


def build_model(
    name: str, n_classes: int, input_shapes: Mapping[str, tuple[int, ...]], options: Mapping[str, Any]
) -> nn.Module:
    """Instantiate ``train.model`` with its options section."""
    if name == "stst":
        from merec.models.stst import STSTNet

        return STSTNet(n_classes=n_classes, input_shapes=input_shapes, **dict(options))
    raise MerecError(f"train.model: unknown model {name!r}; choose one of {', '.join(MODELS)}")
