"""Where a dataset's files are: its root, its annotation file, its frame folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from merec.datasets.cells import RowProblem
from merec.datasets.ids import is_safe_id
from merec.errors import MerecError


def dataset_root(name: str, spec: Mapping[str, Any], layout: str, params_key: str) -> Path:
    """The dataset root (``spec['root']``, default ``data/raw/<name>``); error if missing."""
    root = Path(spec.get("root") or f"data/raw/{name}")
    if not root.is_dir():
        raise MerecError(
            f"dataset '{name}': folder {root} does not exist; put {layout} under {root}, "
            f"or set {params_key}.root in params.yaml"
        )
    return root


def annotation_file(name: str, spec: Mapping[str, Any], root: Path, default: str, params_key: str) -> Path:
    """The annotation file: ``spec['annotation']`` (a bare file name is looked up in the root,
    any other path is used as given), default the official file name inside the root."""
    given = spec.get("annotation")
    path = Path(given) if given else root / default
    if given and path.parent == Path("."):
        path = root / path
    if not path.is_file():
        raise MerecError(
            f"dataset '{name}': annotation file {path} is missing; put the official {default} "
            f"in {root}, or set {params_key}.annotation in params.yaml to where it is"
        )
    return path


def frames_base(name: str, spec: Mapping[str, Any], root: Path, default: str, params_key: str) -> Path:
    """Folder holding the subject folders: ``root / spec['frames']`` (default per format)."""
    sub = spec.get("frames", default)
    sub = "" if sub is None else str(sub)
    if Path(sub).is_absolute() or ".." in Path(sub).parts:
        raise MerecError(
            f"{params_key}.frames = {sub!r}: must be a folder inside the dataset root {root} "
            "(a relative path without '..')"
        )
    return root / sub if sub else root


def clip_folder(base: Path, *parts: str) -> Path:
    """``base/part/...`` after checking every part is a plain name and the result stays in base."""
    for part in parts:
        if not is_safe_id(part):
            raise RowProblem(f"folder name {part!r} is not a plain name inside the dataset root")
    folder = base.joinpath(*parts)
    inside = folder.resolve()
    if not inside.is_relative_to(base.resolve()):
        raise RowProblem(f"frame folder {folder} resolves to {inside}, outside the dataset root {base}")
    return folder
