"""Shared I/O helpers: atomic files and directories, npz archives, frame images.

Every artifact merec writes goes through these helpers, so an interrupted stage never leaves a
file or directory that looks finished: data is written to a temporary sibling and renamed into
place only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike[str]


class MerecError(Exception):
    """An error caused by input data or parameters, with a message that says what to do."""


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``path`` (if any) when the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_npz(path: PathLike, **arrays: Any) -> None:
    """Write a compressed ``.npz`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_npz(path: PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` into memory (no pickles allowed)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise MerecError(
            f"{path}: cannot read this archive ({exc}); delete it and rerun the stage that made it"
        ) from exc


def write_json(path: PathLike, data: Mapping[str, Any]) -> None:
    """Write JSON atomically, sorted and indented for diffable metrics files."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_csv(path: PathLike, frame: Any, **kwargs: Any) -> None:
    """Write a pandas DataFrame as CSV atomically (index dropped unless asked for)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as an RGB uint8 array; a clear error for missing or corrupt files."""
    import cv2

    file = Path(path)
    if not file.is_file():
        raise MerecError(f"{file}: frame file is missing; check the dataset folder")
    if file.stat().st_size == 0:
        raise MerecError(f"{file}: frame file is empty (0 bytes); restore it from the original data")
    data = np.fromfile(file, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise MerecError(f"{file}: frame file is corrupt or not an image; restore it from the original data")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image(path: PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB uint8 image (format from the suffix) atomically."""
    import cv2

    target = Path(path)
    ok, encoded = cv2.imencode(
        target.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise MerecError(f"{target}: OpenCV could not encode this image")
    with atomic_path(target) as tmp:
        encoded.tofile(tmp)


def sample_files(directory: PathLike, suffix: str = ".npz") -> list[Path]:
    """Per-sample artifact files of a stage directory, sorted by name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise MerecError(f"{folder}: stage input directory is missing; run the previous stage first")
    return sorted(p for p in folder.iterdir() if p.suffix == suffix and not p.name.startswith("."))


_WORKER_TRANSFORM: Any = None


def _init_worker(transform: Any) -> None:
    global _WORKER_TRANSFORM
    _WORKER_TRANSFORM = transform


def _process_file(job: tuple[Path, Path]) -> str:
    source, target = job
    arrays = _WORKER_TRANSFORM(load_npz(source), source.stem)
    save_npz(target, **arrays)
    return source.stem


def map_sample_dir(
    input_dir: PathLike,
    output_dir: PathLike,
    transform: Any,
    desc: str,
    workers: int = 1,
) -> int:
    """Apply ``transform(arrays, sample) -> arrays`` to every ``<sample>.npz`` of a stage directory.

    With ``workers > 1`` samples are processed by forked worker processes (for CPU-bound NumPy /
    OpenCV work; torch stages use intra-op threads instead). The output directory is written
    atomically; the number of samples is returned.
    """
    import multiprocessing

    from merec.runtime import progress

    files = sample_files(input_dir)
    if not files:
        raise MerecError(f"{input_dir}: no samples to process; check the previous stage's log")
    with atomic_dir(output_dir) as tmp:
        jobs = [(file, Path(tmp) / file.name) for file in files]
        if workers > 1 and len(files) > 1:
            context = multiprocessing.get_context("fork")
            with context.Pool(min(workers, len(files)), initializer=_init_worker, initargs=(transform,)) as pool:
                for _ in progress(pool.imap_unordered(_process_file, jobs), desc, total=len(jobs)):
                    pass
        else:
            _init_worker(transform)
            for job in progress(jobs, desc):
                _process_file(job)
    return len(files)
