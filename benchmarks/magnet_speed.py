"""MagNet inference speed: frames per second on 13-frame 128 x 128 clips (the pipeline's input).

Times :class:`merec.magnify.magnet.MagNetMagnifier` end to end (uint8 in, uint8 out; the onset is
encoded once, the frames in batches of ``--batch-sizes``) on the CPU with ``--threads`` threads and,
when a CUDA GPU is visible, on the GPU. The baseline, timed in the same process on the same clips,
is the linear Eulerian magnifier (``evm``, numpy/OpenCV on the CPU); ratios are MagNet's time per frame over EVM's.

Usage::

    python benchmarks/magnet_speed.py [--threads 2] [--clips 5] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from merec.magnify import EvmParams, MagnetParams, Magnifier
from merec.magnify.evm import EulerianMagnifier
from merec.magnify.magnet import MagNetMagnifier


def frames_per_second(magnifier: Magnifier, clips: np.ndarray, device: str = "cpu") -> float:
    magnifier(clips[0])  # warm-up (allocations, cuDNN autotuning)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for clip in clips:
        magnifier(clip)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clips.shape[0] * clips.shape[1] / (time.perf_counter() - started)


def magnet_options(checkpoint: str | None, batch_size: int) -> MagnetParams:
    """``magnify.magnet`` options: the given checkpoint (default: the shipped one) and batch size."""
    options: dict[str, object] = {"batch_size": batch_size}
    if checkpoint:
        options["checkpoint"] = checkpoint
    return MagnetParams.from_mapping(options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--frames", type=int, default=13)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--batch-sizes", default="1,4,13", help="comma-separated batch sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = (args.clips, args.frames, args.size, args.size, 3)
    clips = rng.integers(0, 256, shape, dtype=np.uint8)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"MagNet, {args.clips} clips of {args.frames} frames at {args.size}x{args.size}; "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} CPU thread(s)"
    )
    baseline = frames_per_second(EulerianMagnifier(5.0, EvmParams.from_mapping()), clips)
    print(f"{'evm (baseline), cpu':>24}           : {baseline:8.1f} frames/s ({1000 / baseline:7.1f} ms/frame)")
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            magnifier = MagNetMagnifier(5.0, magnet_options(args.checkpoint, batch), device)
            fps = frames_per_second(magnifier, clips, device)
            print(
                f"{name:>24}  batch {batch:>3}: {fps:8.1f} frames/s ({1000 / fps:7.1f} ms/frame)"
                f"  ({baseline / fps:.0f}x the time of evm)"
            )


if __name__ == "__main__":
    main()
