"""Where a dataset's files are: its root, its annotation file, its frame folders."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from merec.datasets.cells import RowProblem
from merec.datasets.frames import IMAGE_SUFFIXES, frame_number_of
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


def annotation_file(
    name: str, spec: Mapping[str, Any], root: Path, official: str | Sequence[str], params_key: str
) -> Path:
    """The annotation file: ``spec['annotation']`` (a bare file name is looked up in the root,
    any other path is used as given), default the first official file name found in the root
    (``official`` lists the names a release uses, the usual one first)."""
    names = [official] if isinstance(official, str) else list(official)
    given = spec.get("annotation")
    if given:
        path = Path(given)
        if path.parent == Path("."):
            path = root / path
    else:
        path = next((root / n for n in names if (root / n).is_file()), root / names[0])
    if not path.is_file():
        others = f" (or {', '.join(names[1:])})" if len(names) > 1 and not given else ""
        raise MerecError(
            f"dataset '{name}': annotation file {path} is missing; put the official {names[0]}{others} "
            f"in {root}, or set {params_key}.annotation in params.yaml to where it is"
        )
    return path


def _case_insensitive(base: Path, parts: tuple[str, ...]) -> Path | None:
    folder = base
    for part in parts:
        if (folder / part).is_dir():
            folder = folder / part
            continue
        if not folder.is_dir():
            return None
        matches = [entry for entry in folder.iterdir() if entry.name.casefold() == part.casefold() and entry.is_dir()]
        if len(matches) != 1:
            return None
        folder = matches[0]
    return folder


def damaged_frames(
    spec: Mapping[str, Any],
    root: Path,
    base: Path,
    params_key: str,
    folder_parts: Callable[[str, str], tuple[str, ...]] | None = None,
) -> dict[Path, frozenset[int]]:
    """Frame numbers listed as damaged, per frame folder (``spec['damaged_frames']``; none by default).

    The list is a text or csv file with one frame per line, either as a path relative to the
    frames folder or the dataset root (``spNO.1/a/color/123.jpg``; an absolute path is matched
    by its trailing folders) or, as CAS(ME)³'s ``error_info_damaged_image_partA.txt`` writes it,
    as subject, clip and file name (``spNO.3 J 498.jpg  the image cannot open``), placed by the
    format's ``folder_parts``. Other words on a line and lines starting with ``#`` are ignored.
    A listed frame counts as missing: inside a clip it is filled like a dropped frame
    (``ingest.frame_gaps``), as an annotated onset or offset it is an error.
    """
    given = spec.get("damaged_frames")
    if not given:
        return {}
    path = Path(given)
    if path.parent == Path("."):
        path = root / path
    if not path.is_file():
        raise MerecError(f"{params_key}.damaged_frames: {path} does not exist; give the list's path")
    listed: dict[Path, set[int]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        tokens = [token.strip('"') for token in re.split(r"[\s,;]+", line.strip()) if token.strip('"')]
        image = next((i for i, token in enumerate(tokens) if Path(token).suffix.lower() in IMAGE_SUFFIXES), None)
        if line.lstrip().startswith("#") or image is None:
            continue
        file = Path(tokens[image].replace("\\", "/"))
        if len(file.parts) == 1 and image >= 2 and folder_parts is not None:
            file = Path(*folder_parts(tokens[image - 2], tokens[image - 1]), file.name)
        folder = _listed_folder(file.parent, base, root)
        digits = frame_number_of(file.stem)
        if folder is None or digits is None:
            raise MerecError(
                f"{path} line {number}: no frame folder {file.parent} in {base} or {root}; the damaged-frame "
                "list must name frames of this dataset"
            )
        listed.setdefault(folder, set()).add(digits)
    return {folder: frozenset(numbers) for folder, numbers in listed.items()}


def _listed_folder(folder: Path, base: Path, root: Path) -> Path | None:
    """The dataset folder a listed frame folder names (its trailing parts, for absolute paths)."""
    parts = [part for part in folder.parts if part not in ("/", "")]
    if ".." in parts:
        return None
    for start in range(len(parts)):
        for top in (base, root):
            candidate = top.joinpath(*parts[start:])
            if candidate.is_dir():
                return candidate
    return None


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
    """``base/part/...`` after checking every part is a plain name and the result stays in base.

    Where the folder does not exist as spelled, a folder that differs only in case is used
    (annotation files spell ``J`` or ``spNO`` where the release's folders say ``j`` or ``spNo``).
    """
    for part in parts:
        if not is_safe_id(part):
            raise RowProblem(f"folder name {part!r} is not a plain name inside the dataset root")
    folder = base.joinpath(*parts)
    if not folder.is_dir():
        folder = _case_insensitive(base, parts) or folder
    inside = folder.resolve()
    if not inside.is_relative_to(base.resolve()):
        raise RowProblem(f"frame folder {folder} resolves to {inside}, outside the dataset root {base}")
    return folder
