"""CUDA paths: CPU/GPU agreement of IFNet, MagNet and a training step of every model
(benchmarks/gpu.py). Marked ``gpu``: skipped, with the reason, where no CUDA GPU is visible."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import REPO


def _script():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", REPO / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.gpu
def test_cpu_and_gpu_agree_for_every_network() -> None:  # pragma: no cover - needs a GPU
    rows = _script().run_checks()
    assert all(row["ok"] for row in rows), rows


def test_the_checks_themselves_on_the_cpu(one_torch_thread: None) -> None:
    """The script's checks compare two devices; CPU against CPU agrees exactly (three small models
    here; the GPU run checks every one)."""
    rows = _script().run_checks(devices=("cpu", "cpu"), models=("aurel", "c3d", "stst", "mdmo"))
    assert {row["check"] for row in rows} >= {"ifnet", "magnet", "train aurel", "train c3d", "train stst"}
    assert all(row["ok"] and row["max_diff"] == 0 for row in rows), rows


@pytest.mark.gpu
def test_a_fold_trains_with_mixed_precision_on_cuda() -> None:  # pragma: no cover - needs a GPU
    from merec.train import train_fold
    from tests.test_train import CLASSES, params, toy_features

    result = train_fold(toy_features(), CLASSES, "d-1", params(device="cuda", amp=True))
    assert result.info["device"] == "cuda"
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    assert (result.predictions["predicted"] == result.predictions["label"]).mean() == 1.0
