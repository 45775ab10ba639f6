"""The dataset formats merec reads, and :func:`load_samples`, which reads one (see :mod:`merec.datasets`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from merec.datasets import casme2, casme3, megc, samm, smic
from merec.datasets.ids import check_name
from merec.datasets.labels import LabelMap
from merec.datasets.settings import IngestParams
from merec.datasets.validation import LOG, Candidate, IngestResult, finalize
from merec.errors import MerecError

FORMATS = ("samm", "casme2", "smic", "casme3", "megc")
SPEC_KEYS = frozenset({"format", "root", "annotation", "frames", "sources", "fps", "damaged_frames"})
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


def load_samples(
    name: str, spec: Mapping[str, Any], params: IngestParams | None = None, **settings: Any
) -> IngestResult:
    """Read dataset ``name`` (params entry ``spec``) into the normalised samples table.

    ``params`` is the ``ingest`` section; without it the schema defaults with ``settings``
    (keys of that section, e.g. ``on_error="skip"``) are used.
    """
    check_name(name)
    if params is None:
        params = IngestParams.from_mapping(settings)
    elif settings:
        raise TypeError("pass either params or settings, not both")
    fmt = _format_of(name, spec)
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        LOG.warning("datasets.%s: ignoring unknown key(s) %s", name, ", ".join(map(str, unknown)))
    candidates = READERS[fmt](name, spec, errata=params.errata == "official")
    return finalize(name, candidates, LabelMap.of(fmt, params.label_set).classify, params)


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
