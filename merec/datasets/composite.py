"""A composite of datasets, each read by its own adapter: the cross-dataset protocol.

``{format: composite, root: data/raw, sources: {casme2: {format: casme2, root: ...}, samm: {...}},
folds: dataset}`` reads every source with its format (its own annotation, frames, fps, damaged
frames and errata) and labels each row by its own format's ``3class`` mapping, the label set all
formats share. Subjects and sample ids are qualified by the source's name (``casme2/01``,
``casme2-01-EP02_01f``). With ``folds: dataset`` every source is one fold: leave-one-dataset-out,
as in meb's cross-dataset protocol; with ``folds: subject`` (the default) it is LOSO over the
union. ``root`` is the folder holding the sources (the DAG watches it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from merec.datasets.ids import check_name
from merec.datasets.validation import Candidate
from merec.errors import MerecError

Reader = Callable[..., list[Candidate]]
NOT_NESTED = ("composite", "megc")


def read(
    name: str,
    spec: Mapping[str, Any],
    params_key: str | None = None,
    *,
    errata: bool = True,
    readers: Mapping[str, Reader],
) -> list[Candidate]:
    """Candidates of every source dataset, each marked with the format that labels it."""
    params_key = params_key or f"datasets.{name}"
    sources = spec.get("sources") or {}
    if not isinstance(sources, Mapping) or len(sources) < 2:
        raise MerecError(
            f"{params_key}.sources must name at least two datasets, each with its format and root, e.g. "
            "{casme2: {format: casme2, root: data/raw/casme2}, samm: {format: samm, root: data/raw/samm}}"
        )
    found: list[Candidate] = []
    for source, source_spec in sources.items():
        check_name(str(source))
        key = f"{params_key}.sources.{source}"
        fmt = source_spec.get("format") if isinstance(source_spec, Mapping) else None
        if fmt not in readers or fmt in NOT_NESTED:
            formats = ", ".join(f for f in readers if f not in NOT_NESTED)
            raise MerecError(f"{key} needs a format (one of: {formats}) and a root; got {source_spec!r}")
        try:
            candidates = readers[fmt](str(source), source_spec, params_key=key, errata=errata)
        except MerecError as exc:
            raise MerecError(f"dataset '{name}' (composite) needs {source}: {exc}") from exc
        for candidate in candidates:
            candidate.label_format = str(fmt)
        found.extend(candidates)
    return found
