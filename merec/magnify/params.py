"""The ``magnify`` section of params.yaml as typed objects (defaults: the params schema)."""

from __future__ import annotations

from dataclasses import dataclass

from merec.config import Params


@dataclass(frozen=True)
class EvmParams(Params):
    """``magnify.evm``: Laplacian ``levels``, cutoff wavelength ``lambda_c`` (px), and whether the
    finest band and the low-pass residual are amplified too."""

    section = "magnify.evm"
    levels: int
    lambda_c: float
    amplify_finest: bool
    amplify_lowpass: bool


@dataclass(frozen=True)
class MagnetParams(Params):
    """``magnify.magnet``: ``checkpoint`` (state dict path; the default names the shipped weights),
    ``batch_size`` (frames per forward pass) and ``residual`` (residual decoding
    ``frame + D(V, M~) - D(V, M)``, which returns the onset unchanged and only adds the predicted
    change; ``False``: the paper's decoded output ``D(V, M~)``; see ``docs/magnification.md``) and
    ``precision`` (``float32``; ``bfloat16`` autocast: about 2x faster on CPUs with native bfloat16,
    frames within about 2 grey levels)."""

    section = "magnify.magnet"
    checkpoint: str
    batch_size: int
    residual: bool
    precision: str


@dataclass(frozen=True)
class MagnifyParams(Params):
    """``magnify``: method, amplification ``alpha``, device and the options of each method."""

    section = "magnify"
    method: str
    alpha: float
    device: str
    none: dict
    evm: EvmParams
    magnet: MagnetParams
