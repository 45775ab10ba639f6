"""The ``ingest`` params section: how annotations become samples, and what is corrected on the way."""

from __future__ import annotations

from dataclasses import dataclass

from merec.config import Params
from merec.errors import MerecError


@dataclass(frozen=True)
class IngestParams(Params):
    """The ``ingest`` section (defaults and constraints in the schema).

    ``label_set`` (3class | emotion); ``on_error`` (fail | skip) for rows with a problem;
    ``errata`` (official | none): apply the known corrections of official releases;
    ``missing_apex`` (estimate | skip | fail) for rows whose apex is not annotated;
    ``frame_gaps`` (fill | skip | fail) for frames missing between onset and offset;
    ``max_duration_s``: longest onset-to-offset span accepted, in seconds at the dataset's
    frame rate (None: the dataset's own limit, 1 s for most); ``shards``: the shards the
    per-sample stages run in (``0, 1, ..., n-1``; see :mod:`merec.shards`).
    """

    section = "ingest"
    label_set: str
    on_error: str
    errata: str
    missing_apex: str
    frame_gaps: str
    max_duration_s: float | None
    shards: tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.shards) != list(range(len(self.shards))):
            raise MerecError(
                f"ingest.shards must list 0, 1, ..., n-1 (n shards), got {list(self.shards)}; "
                f"e.g. {list(range(len(self.shards)))}"
            )
