"""Safe loading of torch checkpoints with a complete key and shape check.

Every network merec runs (IFNet, MagNet, the recognition models) is loaded through
:func:`load_state_dict`: tensors only (``weights_only=True``), an optional prefix such as the
``module.`` of DDP checkpoints stripped, and every key and shape compared with the model, so a
wrong or truncated file is an error that lists the mismatches, never a half-loaded model.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from merec.errors import MerecError
from merec.io import PathLike, atomic_path

MAX_LISTED = 12


def read_state_dict(path: PathLike, strip_prefixes: Iterable[str] = ("module.",)) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True`` onto the CPU and strip key prefixes."""
    file = Path(path)
    if not file.is_file():
        raise MerecError(f"{file}: checkpoint not found; check the path in params.yaml")
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise MerecError(
            f"{file}: not a readable torch checkpoint ({type(exc).__name__}: {exc}); "
            "the file may be truncated or not a tensors-only state dict: re-create or re-copy it"
        ) from exc
    if isinstance(raw, Mapping) and "state_dict" in raw and isinstance(raw["state_dict"], Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise MerecError(f"{file}: expected a state dict of tensors, found {type(raw).__name__}")
    prefixes = tuple(strip_prefixes)
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        state[key] = value
    return state


def check_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Raise :class:`MerecError` listing missing, unexpected and wrongly shaped keys."""
    expected = model.state_dict()
    ignored = tuple(ignore_unexpected)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and not k.startswith(ignored)]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    lines = [f"{source}: checkpoint does not match {type(model).__name__}:"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:MAX_LISTED])
            more = f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
            lines.append(f"  {len(items)} {title}: {shown}{more}")
    lines.append("  Use a checkpoint of the same architecture, or fix the path in params.yaml.")
    raise MerecError("\n".join(lines))


def load_state_dict(
    model: nn.Module,
    path: PathLike,
    strip_prefixes: Iterable[str] = ("module.",),
    ignore_unexpected: Iterable[str] = (),
    source: str = "",
) -> nn.Module:
    """Load ``path`` into ``model`` after a full key/shape check; returns the model.

    ``ignore_unexpected``: key prefixes of the file that the model leaves out (a classifier head);
    ``source``: how errors name the file (for example the param that gave it; default the path)."""
    state = read_state_dict(path, strip_prefixes)
    check_state_dict(model, state, source or str(path), ignore_unexpected)
    ignored = tuple(ignore_unexpected)
    model.load_state_dict({k: v for k, v in state.items() if not (ignored and k.startswith(ignored))})
    return model


def save_state_dict(model: nn.Module, path: PathLike) -> None:
    """Save a CPU copy of ``model``'s state dict atomically, byte-identical for identical weights.

    ``torch.save`` names the archive's root folder after the file it writes; saving to memory first
    keeps the random name of the temporary file out of the bytes (stable DVC hashes across reruns).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
