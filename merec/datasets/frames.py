"""Frame folders: frame numbers from file names, and the frame files of a clip."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from merec.errors import MerecError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_LAST_DIGITS = re.compile(r"([0-9]+)[^0-9]*$")


def frame_number_of(stem: str) -> int | None:
    """Frame number of a file stem: its last digit run (``006_05562`` -> 5562, ``img46`` -> 46)."""
    match = _LAST_DIGITS.search(stem)
    return int(match.group(1)) if match else None


def list_frames(folder: str | os.PathLike[str], exclude: Iterable[int] = ()) -> dict[int, Path]:
    """Frame number -> image file (.jpg .jpeg .png .bmp) of a frame folder, sorted by number.

    Hidden files (such as macOS ``._img1.jpg``) and images without digits are ignored; two files
    with the same number are an error; numbers in ``exclude`` (damaged frames) are left out.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise MerecError(f"{directory}: frame folder is missing; check the dataset folder")
    frames: dict[int, Path] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            number = frame_number_of(path.stem)
            if number is None or not entry.is_file():
                continue
            if number in frames:
                first, second = sorted([frames[number].name, path.name])
                raise MerecError(
                    f"{directory}: frame files {first} and {second} both have frame number "
                    f"{number}; keep only one of them"
                )
            frames[number] = path
    for number in exclude:
        frames.pop(number, None)
    return dict(sorted(frames.items()))


def clip_frame_paths(
    row: Any,
    first: int | None = None,
    last: int | None = None,
    *,
    gaps: bool = False,
    exclude: Iterable[int] = (),
) -> list[Path]:
    """Frame files of a samples-table row from onset to offset inclusive (or ``first..last``).

    A missing frame is an error, except with ``gaps=True`` where a frame missing between two
    present ones is filled with the previous frame (see :func:`fill_gaps`); frame numbers in
    ``exclude`` (damaged frames) count as missing.
    """
    folder = Path(_field(row, "frames_dir"))
    start = int(_field(row, "onset") if first is None else first)
    stop = int(_field(row, "offset") if last is None else last)
    label = _sample_label(row)
    if start > stop:
        raise MerecError(f"{folder}{label}: first frame {start} is after last frame {stop}")
    frames = list_frames(folder, exclude=exclude)
    missing = [number for number in range(start, stop + 1) if number not in frames]
    if missing and not (gaps and start in frames and stop in frames):
        raise MerecError(
            f"{folder}{label}: frame(s) {compact_numbers(missing)} are missing "
            f"(frames {start}-{stop} are needed); restore them from the original data"
        )
    return fill_gaps(frames, start, stop)


def fill_gaps(frames: dict[int, Path], start: int, stop: int) -> list[Path]:
    """Files for frames ``start..stop``: a missing number takes the file of the previous frame.

    Repeating the previous frame keeps every later frame at its own time position (a dropped
    frame in a recording, not a shorter clip); ``start`` must be present.
    """
    if start not in frames:
        raise MerecError(f"frame {start} is missing; it cannot be filled from an earlier frame")
    paths: list[Path] = []
    for number in range(start, stop + 1):
        paths.append(frames.get(number, paths[-1] if paths else frames[start]))
    return paths


def compact_numbers(numbers_: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers_)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _field(row: Any, name: str) -> Any:
    try:
        return row[name]
    except (KeyError, TypeError, IndexError):
        try:
            return getattr(row, name)
        except AttributeError:
            raise MerecError(f"sample row has no {name!r} field; pass a samples-table row") from None


def _sample_label(row: Any) -> str:
    try:
        return f" (sample {_field(row, 'sample')})"
    except MerecError:
        return ""
