"""CPU/GPU agreement and speed of the networks merec runs: IFNet (RIFE), MagNet, one training step per model.

On a machine with CUDA, each check runs the same inputs and weights on the CPU and on the GPU,
reports the largest difference and the time per call on each, and exits 1 when a difference is
beyond its tolerance. Without CUDA it says so and exits 0 (the tests marked ``gpu`` are skipped
the same way).

    python benchmarks/gpu.py                     # the table
    python benchmarks/gpu.py --json out.json     # also as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from merec.interpolate import RifeParams
from merec.interpolate.rife import RifeInterpolator
from merec.magnify.magnet import MagNet
from merec.models import MODELS, build_model, model_class

# Largest accepted CPU/GPU difference: frames in grey levels (uint8), losses relative.
TOLERANCE = {"ifnet": 2.0, "magnet": 2.0, "train": 1e-3}
SHAPES = {
    "apex": (3, 32, 32), "face": (6, 3, 32, 32), "rois": (8, 6, 3, 24, 24), "frames": (7, 1, 64, 64),
    "frontal": (1, 64, 64), "landmarks": (68, 2), "adjacency": (9, 9),
}  # fmt: skip


def _timed(function: Callable[[], Any], repeat: int = 5) -> tuple[Any, float]:
    result = function()  # warm-up (and the result)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, (time.perf_counter() - start) / repeat


def check_ifnet(size: int = 128, devices: tuple[str, str] = ("cpu", "cuda")) -> dict[str, Any]:
    """One synthesised frame between two frames, on each device."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    positions = np.array([0.5])
    out = {}
    for device in devices:
        interpolator = RifeInterpolator(RifeParams.from_mapping({}), device)
        out[device] = _timed(lambda i=interpolator: i.resample(frames, positions))
    diff = float(np.abs(out[devices[0]][0].astype(int) - out[devices[1]][0].astype(int)).max())
    return {"check": "ifnet", "max_diff": diff, "cpu_s": out[devices[0]][1], "gpu_s": out[devices[1]][1]}


def check_magnet(size: int = 128, frames: int = 8, devices: tuple[str, str] = ("cpu", "cuda")) -> dict[str, Any]:
    """A batch of frames magnified against a reference, on each device (random weights, fixed seed)."""
    torch.manual_seed(0)
    model = MagNet().eval()
    images = torch.rand(frames, 3, size, size) * 2 - 1
    out = {}
    for device in devices:
        net = model.to(device)
        batch = images.to(device)

        def run(net: MagNet = net, batch: torch.Tensor = batch) -> np.ndarray:
            with torch.inference_mode():
                result = net(batch[:1].expand_as(batch), batch, 4.0, residual=True, clip=True)
            return ((result.cpu() + 1) * 127.5).round().numpy()

        out[device] = _timed(run)
    diff = float(np.abs(out[devices[0]][0] - out[devices[1]][0]).max())
    return {"check": "magnet", "max_diff": diff, "cpu_s": out[devices[0]][1], "gpu_s": out[devices[1]][1]}


def check_training_step(name: str, batch_size: int = 8, devices: tuple[str, str] = ("cpu", "cuda")) -> dict[str, Any]:
    """One forward-backward step of model ``name`` with the same weights and batch on each device."""
    torch.manual_seed(0)
    context = {"roi_names": [f"r{k}" for k in range(SHAPES["rois"][0])], "aus": list(range(1, 10))}
    model = build_model(name, 3, SHAPES, {}, context)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batch = {key: torch.randn(batch_size, *shape) for key, shape in SHAPES.items() if key != "adjacency"}
    batch["landmarks"] = torch.rand(batch_size, *SHAPES["landmarks"])  # fractions of the crop
    batch["adjacency"] = torch.rand(9, 9)
    labels = torch.arange(batch_size) % 3
    out = {}
    for device in devices:
        model.load_state_dict(state)
        net = model.to(device).train()
        data = {key: value.to(device) for key, value in batch.items()}
        target = labels.to(device)

        def step(net: torch.nn.Module = net, data: dict = data, target: torch.Tensor = target) -> float:
            net.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(data), target)
            loss.backward()
            return float(loss.detach())

        torch.manual_seed(1)
        out[device] = _timed(step, repeat=3)
    loss_cpu, loss_gpu = out[devices[0]][0], out[devices[1]][0]
    relative = abs(loss_cpu - loss_gpu) / max(abs(loss_cpu), 1e-12)
    return {"check": f"train {name}", "max_diff": relative, "cpu_s": out[devices[0]][1], "gpu_s": out[devices[1]][1]}


def run_checks(devices: tuple[str, str] = ("cpu", "cuda"), models: Sequence[str] = MODELS) -> list[dict[str, Any]]:
    """Every check, comparing ``devices`` (CPU against CUDA; CPU against CPU tests the script itself),
    with a training step of each of ``models`` (default: all)."""
    checks = [check_ifnet(devices=devices), check_magnet(devices=devices)]
    networks = [name for name in models if not getattr(model_class(name), "closed_form", False)]  # mdmo: no steps
    rows = checks + [check_training_step(name, devices=devices) for name in networks]
    for row in rows:
        row["tolerance"] = TOLERANCE[row["check"].split()[0]]
        row["ok"] = row["max_diff"] <= row["tolerance"]
        row["speedup"] = row["cpu_s"] / row["gpu_s"] if row["gpu_s"] > 0 else float("nan")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU is visible: nothing to check (the gpu tests skip the same way)")
        return 0
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = run_checks()
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'check':<14} {'max diff':>10} {'tolerance':>10} {'CPU ms':>9} {'GPU ms':>9} {'speed-up':>9}")
    for row in rows:
        print(
            f"{row['check']:<14} {row['max_diff']:>10.4g} {row['tolerance']:>10.4g} {row['cpu_s'] * 1e3:>9.2f} "
            f"{row['gpu_s'] * 1e3:>9.2f} {row['speedup']:>8.1f}x{'' if row['ok'] else '  DIFFERS'}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": torch.cuda.get_device_name(0), "rows": rows}, handle, indent=1)
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
