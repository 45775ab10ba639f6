"""File I/O: atomic files and directories, npz archives, JSON/CSV, frame images.

Every artifact merec writes goes through these helpers, so an interrupted stage never leaves a
file or directory that looks finished: data is written to a temporary sibling and renamed into
place only when complete.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from merec.errors import MerecError

PathLike = str | os.PathLike[str]


@functools.cache
def _umask() -> int:
    """The process umask (read once: reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_parts(target: Path) -> None:
    """Delete temporary siblings of ``target`` left by a writer that was killed (SIGKILL, power loss).

    They are named ``.<target name>.<8 random characters>.part``; the writer of ``target`` owns them,
    and a new write of ``target`` means the old one is dead, so they can go.
    """
    if target.parent.name.endswith(".part"):
        return  # inside a fresh temporary directory of atomic_dir: nothing stale there
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.part")
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        stale = [Path(entry.path) for entry in entries if pattern.fullmatch(entry.name)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    On an exception nothing is left behind and an existing ``path`` is kept unchanged; a temporary
    file left by a killed writer of the same path is removed. The file gets the usual permissions
    (0666 minus the umask) rather than ``mkstemp``'s owner-only 0600.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``path`` (if any) when the block succeeds.

    On an exception the temporary directory is deleted and an existing ``path`` is kept unchanged;
    directories left by a killed writer of the same path are removed first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(target)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if target.exists():
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(path: PathLike, marker: str, what: str) -> None:
    """An error unless ``path`` is absent, an empty folder, or an earlier output holding ``marker``:
    a folder the caller would replace whole must never be someone's other files."""
    target = Path(path)
    if not target.exists():
        return
    if not target.is_dir():
        raise MerecError(f"{target} exists and is not a folder; choose another path for the {what}")
    if any(target.iterdir()) and not (target / marker).is_file():
        raise MerecError(
            f"{target} exists and holds other files (no {marker}); it would be replaced whole: "
            f"choose a new folder for the {what}"
        )


ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: identical arrays give identical bytes


def save_npz(path: PathLike, **arrays: Any) -> None:
    """Write a compressed ``.npz`` atomically, byte-identical for identical arrays.

    Like ``np.savez_compressed`` (``np.load`` reads it), but without the write time that NumPy
    stores in every member, so reruns do not change DVC hashes, and without pickled objects.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH)
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(value), allow_pickle=False)


def load_npz(path: PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` into memory (no pickles allowed)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError as exc:
        raise MerecError(f"{path}: file is missing; rerun the stage that makes it") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise MerecError(
            f"{path}: cannot read this archive ({exc}); delete it and rerun the stage that made it"
        ) from exc


def write_json(path: PathLike, data: Mapping[str, Any], sort_keys: bool = True) -> None:
    """Write JSON atomically, indented and (by default) sorted for diffable metrics files; ``sort_keys=False``
    keeps the mappings' order where it means something (the ROIs of a params section)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=sort_keys, default=_json_default) + "\n")


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


def read_image(path: PathLike, grayscale: bool = False) -> np.ndarray:
    """Read an image file as RGB (or grayscale) uint8; a clear error for missing or corrupt files.

    Missing, empty, undecodable and truncated files (a JPEG that stops before its end marker, which
    some OpenCV builds decode without complaint into a partly grey image) are :class:`MerecError`
    naming the file.
    """
    import cv2

    file = Path(path)
    if not file.is_file():
        raise MerecError(f"{file}: frame file is missing; check the dataset folder")
    if file.stat().st_size == 0:
        raise MerecError(f"{file}: frame file is empty (0 bytes); restore it from the original data")
    data = np.fromfile(file, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    if image is None:
        raise MerecError(f"{file}: frame file is corrupt or not an image; restore it from the original data")
    if _is_truncated_jpeg(data.tobytes()):
        raise MerecError(
            f"{file}: frame file is truncated (the JPEG data stops before its end marker); "
            "restore it from the original data"
        )
    return image if grayscale else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _is_truncated_jpeg(data: bytes) -> bool:
    """True for JPEG data without an end-of-image marker that Pillow also cannot fully decode.

    The fast path is the EOI marker at the end (after any 0x00/0xFF padding); otherwise the file is
    decoded with Pillow, which stops at EOI (so trailing data after a complete image is fine) and
    raises on data that ends early.
    """
    if not data.startswith(b"\xff\xd8") or data.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
        return False
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError):
        return True
    return False


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
