"""The ``spot`` params section: how curves become intervals, and the learned spotter's training."""

from __future__ import annotations

from dataclasses import dataclass

from merec.config import Params


@dataclass(frozen=True)
class BaselineParams(Params):
    """``spot.baseline``: the ``contrast`` of the curve."""

    section = "spot.baseline"
    contrast: bool


@dataclass(frozen=True)
class ThresholdParams(Params):
    """``spot.p``: the threshold fraction of each method."""

    section = "spot.p"
    baseline: float
    learned: float


@dataclass(frozen=True)
class LearnedParams(Params):
    """``spot.learned``: epochs, batch size, Adam's learning rate, negatives kept per positive
    frame, the seeds (one model per fold and seed) and the device (defaults and constraints: the
    schema)."""

    section = "spot.learned"
    epochs: int
    batch_size: int
    lr: float
    negatives: float
    seeds: tuple[int, ...]
    device: str


@dataclass(frozen=True)
class SpotParams(Params):
    """The ``spot`` section: ``method`` (baseline | learned), each method's threshold fraction
    ``p``, the random-interval control's ``control_draws`` and ``seed``, and each method's own
    settings."""

    section = "spot"
    method: str
    p: ThresholdParams
    control_draws: int
    seed: int
    baseline: BaselineParams
    learned: LearnedParams

    @property
    def threshold(self) -> float:
        """The threshold fraction of the chosen method."""
        return self.p.baseline if self.method == "baseline" else self.p.learned
