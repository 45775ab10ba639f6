"""A pickled object that gives itself away: loaders that run pickled code create its marker file."""

from __future__ import annotations

from pathlib import Path


class Exploit:
    """A pickle that creates ``marker`` when unpickled by a loader that runs pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))
