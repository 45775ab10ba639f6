"""MEGC2019 composite (3 classes): ``combined_3class_gt.csv`` plus the three component datasets.

The ground-truth file decides which clips are in and their labels. As released it has no header
row and CRLF line ends (rows like ``casme2,sub01,EP02_01f,1``); a copy with the header
``data, subject, clip, label`` (or named ``combined_3_class_gt.csv``) is read too. Labels are
0 negative, 1 positive, 2 surprise, or the class names. Each row is looked
up in its component dataset, read with that component's adapter from
``spec["sources"][<component>]`` (a root path, or a mapping with ``root``/``annotation``/
``frames`` like a dataset entry; default ``data/raw/<component>``), which gives frames,
onset/apex/offset, emotion and AUs. ``data`` is matched case-insensitively (``casme2``/
``CASME II``, ``samm``, ``smic``/``SMIC-HS``), subjects in either spelling (``sub01``/``01``,
``6``/``006``, ``s01``/``s1``). Subjects and sample ids are qualified by the component:
``casme2/01``, ``casme2-01-EP02_01f``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from merec.datasets import casme2, samm, smic
from merec.datasets.cells import RowProblem, cell_text
from merec.datasets.labels import THREE_CLASS, LabelMap
from merec.datasets.locations import annotation_file, dataset_root
from merec.datasets.sheets import read_records
from merec.datasets.validation import LOG, Candidate
from merec.errors import MerecError

GT_FILE = "combined_3class_gt.csv"
GT_ALTERNATIVES = ("combined_3_class_gt.csv",)
COLUMNS = ("data", "subject", "clip", "label")
LAYOUT = f"{GT_FILE} (columns {', '.join(COLUMNS)})"

Reader = Callable[..., list[Candidate]]
KeyFn = Callable[[Any, Any], tuple[str, str]]
COMPONENTS: dict[str, tuple[Reader, KeyFn, str]] = {
    "casme2": (casme2.read, casme2.match_key, casme2.FORMAT.layout),
    "samm": (samm.read, samm.match_key, samm.FORMAT.layout),
    "smic": (smic.read, smic.match_key, smic.LAYOUT),
}
_ALIASES = {
    "casme2": "casme2",
    "casmeii": "casme2",
    "samm": "samm",
    "smic": "smic",
    "smichs": "smic",
}
Index = dict[tuple[str, str], list[Candidate]]


def read(name: str, spec: Mapping[str, Any], params_key: str | None = None, *, errata: bool = True) -> list[Candidate]:
    """Candidates of every ground-truth row, filled in from the component datasets (each read
    with its official errata unless ``errata`` is False)."""
    params_key = params_key or f"datasets.{name}"
    root = dataset_root(name, spec, LAYOUT, params_key)
    path = annotation_file(name, spec, root, (GT_FILE, *GT_ALTERNATIVES), params_key)
    records = read_records(path, COLUMNS, headerless=True)
    if not records:
        raise MerecError(f"{path}: no ground-truth rows found; use the official file, unchanged")
    used = {component_of(record["data"]) for _, record in records}
    components = {
        component: _read_component(name, spec, component, params_key, errata)
        for component in sorted(c for c in used if c is not None)
    }
    found = [_candidate(f"{path} row {row}", row, record, components) for row, record in records]
    _warn_label_disagreements(found)
    return found


def component_of(value: Any) -> str | None:
    """Component name of a ``data`` cell (None when unknown)."""
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", cell_text(value).casefold()))


def gt_label(value: Any) -> str:
    """Class name of a ground-truth label cell: 0/1/2 or the class name."""
    text = cell_text(value).casefold()
    if text in THREE_CLASS:
        return text
    if text in {"0", "1", "2"}:
        return THREE_CLASS[int(text)]
    raise RowProblem(f"label {cell_text(value)!r} is not 0 (negative), 1 (positive) or 2 (surprise)")


@dataclass(frozen=True)
class _Component:
    """A component dataset's clips, by (subject, clip) key."""

    name: str
    root: Path
    clips: Index

    def lookup(self, key: tuple[str, str]) -> list[Candidate]:
        """Every clip of the component with this key."""
        return self.clips.get(key, [])


def _read_component(name: str, spec: Mapping[str, Any], component: str, params_key: str, errata: bool) -> _Component:
    sources = spec.get("sources") or {}
    if not isinstance(sources, Mapping):
        raise MerecError(f"{params_key}.sources must map component names (casme2, samm, smic) to roots")
    source = sources.get(component) or f"data/raw/{component}"
    source_spec = source if isinstance(source, Mapping) else {"root": str(source)}
    reader, _, layout = COMPONENTS[component]
    root = Path(source_spec.get("root") or f"data/raw/{component}")
    if not root.is_dir():
        raise MerecError(
            f"dataset '{name}' (MEGC2019 composite) needs {component}: folder {root} does not "
            f"exist; put {layout} under {root}, or set {params_key}.sources.{component} in "
            "params.yaml to the folder that holds them"
        )
    try:
        clips = reader(component, source_spec, params_key=f"{params_key}.sources.{component}", errata=errata)
    except MerecError as exc:
        raise MerecError(f"dataset '{name}' (MEGC2019 composite) needs {component}: {exc}") from exc
    index: Index = defaultdict(list)
    for clip in clips:
        if clip.key is not None:
            index[clip.key].append(clip)
    return _Component(component, root, dict(index))


def _candidate(where: str, row: int, record: Mapping[str, Any], components: dict[str, _Component]) -> Candidate:
    found = Candidate(where=where, row=row)
    component = component_of(record["data"])
    try:
        found.label = gt_label(record["label"])
    except RowProblem as exc:
        found.problems.append(str(exc))
        found.label = ""  # no class: keeps finalize from classifying the component's emotion
    if component is None:
        found.problems.append(
            f"data {cell_text(record['data'])!r} is not a MEGC2019 component; use one of: {', '.join(COMPONENTS)}"
        )
        return found
    _, key_of, _ = COMPONENTS[component]
    try:
        key = key_of(record["subject"], record["clip"])
    except RowProblem as exc:
        found.problems.append(f"column 'subject' {exc}")
        return found
    _fill_from(found, components[component], key)
    return found


def _fill_from(found: Candidate, component: _Component, key: tuple[str, str]) -> None:
    """Copy the component clip's fields (and its problems) into the ground-truth candidate."""
    matches = component.lookup(key)
    clip = f"{component.name} clip {key[1]} of subject {key[0]}"
    if not matches:
        found.problems.append(
            f"{clip} is not in the {component.name} dataset at {component.root}; check the "
            "clip name or the component folder"
        )
        return
    if len(matches) > 1:
        places = ", ".join(match.where for match in matches)
        found.problems.append(f"{clip} matches {len(matches)} clips ({places})")
        return
    (match,) = matches
    for attr in (
        "subject",
        "sample",
        "frames_dir",
        "onset",
        "apex",
        "offset",
        "emotion",
        "action_units",
        "aus",
        "removed",
        "apex_missing",
        "apex_required",
        "fps",
        "max_duration_s",
        "damaged",
        "corrections",
    ):
        setattr(found, attr, getattr(match, attr))
    found.problems.extend(f"{match.where}: {problem}" for problem in match.problems)


def _warn_label_disagreements(found: list[Candidate]) -> None:
    """Log clips whose ground-truth class differs from their emotion's usual 3-class mapping."""
    differ = []
    for candidate in found:
        if candidate.problems or candidate.subject is None or candidate.label is None:
            continue
        component = candidate.subject.split("/")[0]
        try:
            usual = LabelMap.of(component, "3class").classify(candidate.emotion)
        except RowProblem:
            usual = None
        if usual != candidate.label:
            differ.append(f"{candidate.sample} ({candidate.emotion} -> {candidate.label})")
    if differ:
        LOG.warning(
            "MEGC2019: %d clip(s) have a ground-truth class that differs from their emotion's "
            "3-class mapping; the ground truth is used: %s",
            len(differ), ", ".join(differ[:10]) + (" ..." if len(differ) > 10 else ""),
        )  # fmt: skip
