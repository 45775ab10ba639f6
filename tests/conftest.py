"""Fixtures shared by the tests (helpers that are not fixtures live in ``tests/helpers/``)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.images import astronaut_face
from tests.helpers.tiny import TINY_SYNTH

os.environ.setdefault("MEREC_NO_PROGRESS", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, with the reason, where no CUDA GPU is visible."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none is visible)")
    for item in gpu_tests:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-subject, 9-clip synthetic dataset in SAMM format."""
    from merec.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("synth") / "synth"
    generate(root, SynthParams.from_mapping(TINY_SYNTH))
    return root


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The tiny project built once by Snakemake and committed (tests clone it: tests.helpers.workflow.clone).

    Under pytest-xdist the workers share one build: the first to need it builds it, under a file lock,
    in the folder above the workers' own temporary folders; the others wait for it and reuse it.
    """
    from tests.helpers.workflow import build

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    folder, done = shared / "built", shared / "built.done"
    with open(shared / "built.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way
            folder.mkdir()
            done.write_text(str(build(folder)))
    return Path(done.read_text())


@pytest.fixture(scope="session")
def face() -> np.ndarray:
    """A 128 x 128 crop of a real face (``skimage.data.astronaut``)."""
    return astronaut_face()


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (bit-identical results for comparisons), then restore."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
