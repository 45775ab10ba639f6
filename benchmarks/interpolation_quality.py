"""Interpolation quality: PSNR/SSIM of predicted in-between frames against held-out real ones.

Sources of frame triplets (outer frames given, the in-between one held out):

* ``photos``: colour photos shipped with scikit-image (astronaut, coffee, chelsea, rocket,
  immunohistochemistry), 128x128 crops moved by a smooth, realistic motion (translation, rotation,
  scaling and a low-frequency non-rigid warp) rendered at times 0, t and 1. Two regimes: ``small``
  (under ~1 px, like consecutive micro-expression frames) and ``large`` (several pixels).
  Besides the middle (t = 1/2) the arbitrary-time table also holds out t = 1/6, 1/3, 2/3, 5/6.
* ``synth``: the project's synthetic MER clips ``data/raw/synth/<subject>/<subject>_<n>/*.jpg``
  when they exist (skipped otherwise): frames i-1, i, i+1 (middle held out) and, for the
  arbitrary-time table, frames i-1 .. i+2 (i and i+1 held out at t = 1/3 and 2/3). Frames are
  centre-cropped to a square and resized to ``--size``.

Methods: ``linear`` blend, ``farneback`` and ``dis`` flow-warp baselines (OpenCV flow between the
outer frames both ways, intermediate flows by the quadratic approximation of Super SloMo, both
frames backward-warped and blended by time), and RIFE HDv3 with each ``timestep`` method.

Usage::

    python benchmarks/interpolation_quality.py [--threads 2] [--clips 8] \
        [--synth-root data/raw/synth]
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from merec.interpolate import LinearInterpolator, RifeParams
from merec.interpolate.rife import RifeInterpolator

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
ARBITRARY_TIMES = (1 / 6, 1 / 3, 1 / 2, 2 / 3, 5 / 6)
#: Motion regimes: max translation (px), rotation (deg), scale change, non-rigid amplitude (px).
REGIMES = {"small": (0.75, 0.5, 0.005, 0.4), "large": (5.0, 3.0, 0.03, 1.5)}

Predictor = Callable[[np.ndarray, np.ndarray, list[float]], np.ndarray]


# --------------------------------------------------------------------------- data
def _displacement(rng: np.random.Generator, size: int, regime: str) -> np.ndarray:
    """A smooth displacement field D (size, size, 2): content at x in frame 1 came from x - D."""
    shift, angle, zoom, warp = REGIMES[regime]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cx = cy = (size - 1) / 2
    theta = np.deg2rad(rng.uniform(-angle, angle))
    scale = 1.0 + rng.uniform(-zoom, zoom)
    tx, ty = rng.uniform(-shift, shift, size=2)
    cos, sin = scale * np.cos(theta), scale * np.sin(theta)
    dx = cos * (xx - cx) - sin * (yy - cy) + cx + tx - xx
    dy = sin * (xx - cx) + cos * (yy - cy) + cy + ty - yy
    coarse = rng.normal(size=(4, 4, 2)).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    smooth *= warp / max(float(np.abs(smooth).max()), 1e-6)
    return np.stack((dx + smooth[..., 0], dy + smooth[..., 1]), axis=-1)


def _render(image: np.ndarray, origin: tuple[int, int], field: np.ndarray, t: float) -> np.ndarray:
    """The crop at ``origin`` after a fraction ``t`` of the motion (backward map, bicubic)."""
    size = field.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    map_x = (xx + origin[1] - t * field[..., 0]).astype(np.float32)
    map_y = (yy + origin[0] - t * field[..., 1]).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def photo_clips(regime: str, clips: int, size: int, seed: int) -> Iterator[tuple[str, dict]]:
    """(name, {time: frame}) clips with frames at 0, 1 and the held-out times."""
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        photo = getattr(data, name)()
        short = min(photo.shape[:2])
        photo = cv2.resize(photo, None, fx=2 * size / short, fy=2 * size / short, interpolation=cv2.INTER_AREA)
        for _ in range(clips):
            margin = 16
            y = int(rng.integers(margin, photo.shape[0] - size - margin))
            x = int(rng.integers(margin, photo.shape[1] - size - margin))
            field = _displacement(rng, size, regime)
            times = (0.0, *ARBITRARY_TIMES, 1.0)
            yield name, {t: _render(photo, (y, x), field, t) for t in times}


def _load_square(path: Path, size: int) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"cannot read {path}")
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    image = image[top : top + side, left : left + side]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _frame_number(path: Path) -> tuple[int, str]:
    """Sort key: the last integer in the file name (``011_7.jpg`` before ``011_10.jpg``)."""
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


def synth_clips(root: Path, max_clips: int, per_clip: int, size: int) -> Iterator[tuple[str, dict]]:
    """(clip, groups) from real synthetic-MER frames.

    ``mid``: frames i-1, i, i+1 (times 0, 1/2, 1); ``thirds``: frames i-1 .. i+2 (times 0, 1/3,
    2/3, 1).
    """
    clip_dirs = sorted(p for p in root.glob("*/*") if p.is_dir() and any(p.glob("*.jpg")))
    for clip_dir in clip_dirs[:max_clips]:
        files = sorted(clip_dir.glob("*.jpg"), key=_frame_number)
        if len(files) < 4:
            continue
        starts = np.linspace(0, len(files) - 4, num=min(per_clip, len(files) - 3)).round().astype(int)
        for start in sorted(set(starts.tolist())):
            frames = [_load_square(files[start + k], size) for k in range(4)]
            label = f"{clip_dir.parent.name}/{clip_dir.name}"
            yield label, {"mid": (frames[0], frames[1], frames[2]), "thirds": frames}


# --------------------------------------------------------------------------- methods
def _flow_warp_predictor(flow: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Predictor:
    """Flow both ways between the outer frames; Super SloMo's intermediate flows; blend by time."""

    def predict(frame0: np.ndarray, frame1: np.ndarray, times: list[float]) -> np.ndarray:
        gray0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
        gray1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
        f01, f10 = flow(gray0, gray1), flow(gray1, gray0)
        yy, xx = np.mgrid[0 : frame0.shape[0], 0 : frame0.shape[1]].astype(np.float32)
        out = []
        for t in times:
            ft0 = -(1 - t) * t * f01 + t * t * f10
            ft1 = (1 - t) ** 2 * f01 - t * (1 - t) * f10
            w0 = cv2.remap(
                frame0,
                xx + ft0[..., 0],
                yy + ft0[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            w1 = cv2.remap(
                frame1,
                xx + ft1[..., 0],
                yy + ft1[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            blend = (1 - t) * w0.astype(np.float32) + t * w1.astype(np.float32)
            out.append(np.clip(np.rint(blend), 0, 255).astype(np.uint8))
        return np.stack(out)

    return predict


def _farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


_DIS = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _dis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _DIS.calc(a, b, None)


def _interpolator_predictor(interp) -> Predictor:
    def predict(frame0: np.ndarray, frame1: np.ndarray, times: list[float]) -> np.ndarray:
        return interp.resample(np.stack((frame0, frame1)), np.asarray(times, dtype=np.float64))

    return predict


class UnshiftedRife(RifeInterpolator):
    """Ablation: ``flow_scale`` without reading the middle flows along the motion."""

    shift_flows = False


class PlainMaskRife(RifeInterpolator):
    """Ablation: ``flow_scale`` with IFNet's mask as is (no ``log((1-t)/t)`` time weighting)."""

    time_weighted_mask = False


def make_methods(device: str) -> dict[str, Predictor]:
    flow_scale = RifeParams.from_mapping({"timestep": "flow_scale"})
    bisection = RifeParams.from_mapping({"timestep": "bisection"})
    return {
        "linear": _interpolator_predictor(LinearInterpolator()),
        "farneback": _flow_warp_predictor(_farneback),
        "dis": _flow_warp_predictor(_dis),
        "rife flow_scale": _interpolator_predictor(RifeInterpolator(flow_scale, device)),
        "rife flow_scale unshifted": _interpolator_predictor(UnshiftedRife(flow_scale, device)),
        "rife flow_scale plain mask": _interpolator_predictor(PlainMaskRife(flow_scale, device)),
        "rife bisection": _interpolator_predictor(RifeInterpolator(bisection, device)),
    }


# --------------------------------------------------------------------------- evaluation
def _scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    psnr = peak_signal_noise_ratio(truth, pred, data_range=255) if not np.array_equal(pred, truth) else 99.0
    ssim = structural_similarity(truth, pred, channel_axis=-1, data_range=255)
    return float(psnr), float(ssim)


class Table:
    """Mean PSNR/SSIM per (row, method), plus the time each method took per predicted frame."""

    def __init__(self) -> None:
        self.scores: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        self.seconds: dict[str, float] = defaultdict(float)
        self.frames: dict[str, int] = defaultdict(int)
        self.rows: list[str] = []

    def add(self, row: str, method: str, pred: np.ndarray, truth: np.ndarray) -> None:
        if row not in self.rows:
            self.rows.append(row)
        self.scores[(row, method)].append(_scores(pred, truth))

    def timed(self, method: str, predictor: Predictor, frame0, frame1, times) -> np.ndarray:
        started = time.perf_counter()
        out = predictor(frame0, frame1, times)
        self.seconds[method] += time.perf_counter() - started
        self.frames[method] += len(times)
        return out

    def print(self, title: str, methods: list[str]) -> None:
        print(f"\n## {title}\n")
        print("PSNR (dB) / SSIM, mean over samples; n = number of held-out frames\n")
        print("| data | n | " + " | ".join(methods) + " |")
        print("|---|---:|" + "---:|" * len(methods))
        for row in self.rows:
            n = len(self.scores[(row, methods[0])])
            cells = []
            for method in methods:
                values = np.array(self.scores[(row, method)])
                cells.append(f"{values[:, 0].mean():.2f} / {values[:, 1].mean():.4f}")
            print(f"| {row} | {n} | " + " | ".join(cells) + " |")
        if not any(self.frames.values()):
            return
        timing = ", ".join(
            f"{m} {1e3 * self.seconds[m] / max(self.frames[m], 1):.1f}" for m in methods if self.frames[m]
        )
        print(f"\nms per predicted frame: {timing}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clips", type=int, default=8, help="clips per photo and motion regime")
    parser.add_argument("--synth-root", type=Path, default=Path("data/raw/synth"))
    parser.add_argument("--synth-clips", type=int, default=20, help="synthetic clips to sample")
    parser.add_argument("--synth-per-clip", type=int, default=3, help="frame groups per clip")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"Interpolation quality at {args.size}x{args.size}; torch {torch.__version__}, "
        f"{device} ({platform.machine()}), {args.threads} thread(s), seed {args.seed}"
    )
    methods = make_methods(device)
    names = list(methods)
    middle, arbitrary = Table(), Table()
    for regime in REGIMES:
        for photo, frames in photo_clips(regime, args.clips, args.size, args.seed):
            times = list(ARBITRARY_TIMES)
            for name, predictor in methods.items():
                preds = arbitrary.timed(name, predictor, frames[0.0], frames[1.0], times)
                for t, pred in zip(times, preds, strict=True):
                    group = "1/2" if t == 0.5 else ("1/6, 5/6" if t in (1 / 6, 5 / 6) else "1/3, 2/3")
                    arbitrary.add(f"photos {regime}, t = {group}", name, pred, frames[t])
                middle.add(f"photos {regime} (all)", name, preds[times.index(0.5)], frames[0.5])
                middle.add(f"photos {regime}: {photo}", name, preds[times.index(0.5)], frames[0.5])
    synth_root = args.synth_root
    if synth_root.is_dir() and any(synth_root.glob("*/*/*.jpg")):
        for _, group in synth_clips(synth_root, args.synth_clips, args.synth_per_clip, args.size):
            f0, f_mid, f1 = group["mid"]
            q = group["thirds"]
            for name, predictor in methods.items():
                middle.add("synth MER (i-1, i, i+1)", name, predictor(f0, f1, [0.5])[0], f_mid)
                preds = arbitrary.timed(name, predictor, q[0], q[3], [1 / 3, 2 / 3])
                arbitrary.add("synth MER, t = 1/3, 2/3 (i-1..i+2)", name, preds[0], q[1])
                arbitrary.add("synth MER, t = 1/3, 2/3 (i-1..i+2)", name, preds[1], q[2])
    else:
        print(f"(no synthetic MER frames under {synth_root}: synth rows skipped)")
    middle.print("Middle frame (t = 1/2) held out", names[:4])
    print("\n(all rife variants give the same frame at t = 1/2: the same single IFNet pass)")
    arbitrary.print("Arbitrary t held out", names)


if __name__ == "__main__":
    main()
