"""The dataset formats merec reads, and :func:`load_samples`, which reads one (see :mod:`merec.datasets`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from merec.datasets import casme2, casme3, megc, samm, smic
from merec.datasets.ids import check_name
from merec.datasets.labels import LabelMap, check_label_set
from merec.datasets.validation import LOG, ON_ERROR, Candidate, IngestResult, finalize
from merec.errors import MerecError

FORMATS = ("samm", "casme2", "smic", "casme3", "megc")
SPEC_KEYS = frozenset({"format", "root", "annotation", "frames", "sources"})
#: What a user puts under a dataset's root, as each dataset is released (for messages and docs).
LAYOUTS: dict[str, str] = {
    "samm": samm.FORMAT.layout,
    "casme2": casme2.FORMAT.layout,
    "smic": smic.LAYOUT,
    "casme3": casme3.FORMAT.layout,
    "megc": f"{megc.LAYOUT}, with the component datasets in their own folders (datasets.<name>.sources)",
}
READERS: dict[str, Callable[..., list[Candidate]]] = {
    "samm": samm.read,
    "casme2": casme2.read,
    "smic": smic.read,
    "casme3": casme3.read,
    "megc": megc.read,
}


def load_samples(name: str, spec: Mapping[str, Any], label_set: str = "3class", on_error: str = "fail") -> IngestResult:
    """Read dataset ``name`` (params entry ``spec``) into the normalised samples table."""
    check_name(name)
    check_label_set(label_set)
    if on_error not in ON_ERROR:
        raise MerecError(f"on_error={on_error!r}; use one of: {', '.join(ON_ERROR)}")
    fmt = _format_of(name, spec)
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        LOG.warning("datasets.%s: ignoring unknown key(s) %s", name, ", ".join(map(str, unknown)))
    candidates = READERS[fmt](name, spec)
    return finalize(name, candidates, LabelMap.of(fmt, label_set).classify, on_error)


def _format_of(name: str, spec: Mapping[str, Any]) -> str:
    if not isinstance(spec, Mapping):
        raise MerecError(f"datasets.{name} must be a mapping with at least 'format'; got {spec!r}")
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise MerecError(
            f"datasets.{name}.format = {fmt!r}; set it to one of: {', '.join(FORMATS)} "
            "(the synthetic dataset uses 'samm')"
        )
    return str(fmt)
