"""Runtime helpers shared by the stages: device choice, thread counts, seeding, logging, progress, worker pools."""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, load_npz, sample_files, save_npz

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


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from merec.errors import MerecError

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


def setup_logging(log_file: str | os.PathLike[str] | None = None, verbose: bool = False) -> None:
    """Log to stderr and, when given, to ``log_file`` (the rule's log)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
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

    With ``workers > 1`` the items are shared among that many forked processes (for CPU-bound
    NumPy/OpenCV/dlib work; ``function`` and the items must be picklable, anything else can reach
    the workers through ``initializer(*initargs)``, run once in each). Closing the iterator early
    (an error in the consumer) stops the workers.
    """
    if workers > 1 and len(items) > 1:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(items)), initializer=initializer, initargs=initargs) as pool:
            yield from progress(pool.imap(function, items), desc, total=len(items))
    else:
        if initializer is not None:
            initializer(*initargs)
        yield from progress(map(function, items), desc, total=len(items))


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
    files = sample_files(input_dir)
    if not files:
        raise MerecError(f"{input_dir}: no samples to process; check the previous stage's log")
    with atomic_dir(output_dir) as tmp:
        jobs = [(file, Path(tmp) / file.name) for file in files]
        for _ in ordered_map(_process_file, jobs, workers, desc, initializer=_init_worker, initargs=(transform,)):
            pass
    return len(files)
