"""The dataset formats merec reads, and :func:`load_samples`, which reads one (see :mod:`merec.datasets`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from merec.datasets import casme1, casme2, casme3, casme3c, composite, fourdme, megc, mmew, samm, smic
from merec.datasets.ids import check_name
from merec.datasets.labels import LabelMap
from merec.datasets.settings import IngestParams
from merec.datasets.validation import LOG, Candidate, IngestResult, finalize
from merec.errors import MerecError

FORMATS = ("samm", "casme2", "smic", "casme3", "casme3c", "casme", "mmew", "4dme", "megc", "composite")
SPEC_KEYS = frozenset({"format", "root", "annotation", "frames", "sources", "fps", "damaged_frames", "folds"})
FOLDS = ("subject", "dataset")
#: What a user puts under a dataset's root, as each dataset is released (for messages and docs).
LAYOUTS: dict[str, str] = {
    "samm": samm.FORMAT.layout,
    "casme2": casme2.FORMAT.layout,
    "smic": smic.LAYOUT,
    "casme3": casme3.FORMAT.layout,
    "casme3c": casme3c.FORMAT.layout,
    "casme": casme1.FORMAT.layout,
    "mmew": mmew.FORMAT.layout,
    "4dme": fourdme.FORMAT.layout,
    "megc": f"{megc.LAYOUT}, with the component datasets in their own folders (datasets.<name>.sources)",
    "composite": "the component datasets, each in its own folder (datasets.<name>.sources, each with a format)",
}
READERS: dict[str, Callable[..., list[Candidate]]] = {
    "samm": samm.read,
    "casme2": casme2.read,
    "smic": smic.read,
    "casme3": casme3.read,
    "casme3c": casme3c.read,
    "casme": casme1.read,
    "mmew": mmew.read,
    "4dme": fourdme.read,
    "megc": megc.read,
}
READERS["composite"] = partial(composite.read, readers=READERS)


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
    folds = spec.get("folds", "subject")
    if folds not in FOLDS:
        raise MerecError(f"datasets.{name}.folds = {folds!r}; use one of: {', '.join(FOLDS)}")
    if folds == "dataset" and fmt not in ("megc", "composite"):
        raise MerecError(
            f"datasets.{name}.folds: dataset (leave-one-dataset-out) needs a composite of datasets "
            "(format: composite or megc); a single dataset has LOSO folds (folds: subject)"
        )
    if fmt == "composite" and params.label_set != "3class":
        raise MerecError(f"dataset '{name}': a composite of datasets has only the 3class label set (ingest.label_set)")
    candidates = READERS[fmt](name, spec, errata=params.errata == "official")

    def classify(found: Candidate) -> str | None:
        return LabelMap.of(found.label_format or fmt, params.label_set).classify(found.emotion)

    return finalize(name, candidates, classify, params, folds)


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
