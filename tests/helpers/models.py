"""Small recognition models for checkpoint tests."""

from __future__ import annotations

import torch

from merec.models import build_model


def stst(widths: tuple[int, ...] = (3, 5, 8)) -> torch.nn.Module:
    """An STSTNet for (3, 16, 16) apex maps with the given stream widths."""
    return build_model("stst", 3, {"apex": (3, 16, 16)}, {"widths": list(widths)})
