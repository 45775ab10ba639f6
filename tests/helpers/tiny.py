"""The tiny configuration (``.test/params.yaml``): what it changes in params.yaml, for the tests.

The file is a whole params file that a newcomer can run (``snakemake --cores 2 --directory .test``);
the tests apply the same changes to copies of the project. Only the MagNet checkpoint differs for
another reason: from ``.test/`` the shipped weights are ``../merec/weights/magnet.pt``.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.helpers import REPO

TINY_FILE = REPO / ".test" / "params.yaml"
PATH_ONLY = {("magnify", "magnet", "checkpoint")}  # differs only because .test/ is one folder down


def _changes(base: Any, tiny: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(base, dict) and isinstance(tiny, dict):
        out: dict[tuple[str, ...], Any] = {}
        for key in sorted(set(base) | set(tiny)):
            out |= _changes(base.get(key), tiny.get(key), (*path, key))
        return out
    return {} if base == tiny or path in PATH_ONLY else {path: tiny}


def tiny_changes() -> dict[tuple[str, ...], Any]:
    """Every value ``.test/params.yaml`` sets differently from params.yaml, by its key path."""
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    return _changes(base, yaml.safe_load(TINY_FILE.read_text()))


def _sections() -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {}
    for path, value in tiny_changes().items():
        sections.setdefault(path[0], {})[".".join(path[1:])] = value
    return sections


TINY_PARAMS = _sections()
TINY_SYNTH = TINY_PARAMS["synth"]
