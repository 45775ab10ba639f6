"""Throughput and memory of the spotting features (``merec spot-features``) on long videos.

Two videos of the embedded long-video generator (30 fps, default settings), one per core, run as
one shard job on 2 cores; frames per second = the videos' frames / the job's wall time. Sizes:
the generator's own 200-px frames, and the same frames enlarged to 480 px and widened to 640 x 480 (CAS(ME)^2's size;
face detection and JPEG decoding grow with it). Memory: the largest worker's peak resident set
for a ``--seconds`` video and for one ``--longer`` times as long: bounded by
``spot_features.chunk_frames``, it should not grow with the length.

    python benchmarks/spot_throughput.py --output benchmarks/results/spot_throughput.json   # about 5 min
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import cpu_description, write_record

REPO = Path(__file__).resolve().parent.parent


def make_videos(root: Path, seconds: float, size: int | None) -> Path:
    """Two generated videos (optionally resized to ``size`` x 3/4 ``size``), ingested as one shard."""
    from merec.datasets.long_ingest import run as ingest
    from merec.datasets.settings import IngestParams
    from merec.synth.long_videos import LongVideoParams, generate_long_videos

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    synth = {**params["synth_lv"], "subjects": 2, "duration_s": [seconds, seconds]}
    generate_long_videos(root / "raw", LongVideoParams.from_mapping(synth))
    if size:
        for path in (root / "raw").rglob("*.jpg"):
            height = size * 3 // 4  # the square frame enlarged to the height, the sides filled (no distortion)
            image = cv2.resize(cv2.imread(str(path)), (height, height), interpolation=cv2.INTER_CUBIC)
            side = (size - height) // 2
            image = cv2.copyMakeBorder(image, 0, 0, side, size - height - side, cv2.BORDER_REPLICATE)
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    ingest("lv", {"format": "samm_lv", "root": str(root / "raw")}, root / "videos.csv",
           IngestParams.from_mapping({"shards": [0]}))  # fmt: skip
    return root / "videos.csv"


def measure(root: Path, videos: Path) -> dict[str, Any]:
    """Run the shard job as the workflow does (``python -m merec spot-features``) and time it."""
    import pandas as pd

    command = [sys.executable, "-m", "merec", "spot-features", "--input", str(root / "videos" / "shard-0.json"),
               "--videos", str(videos), "--output", str(root / "features" / "shard-0.json")]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "MEREC_NO_PROGRESS": "1"})  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    line = [text for text in result.stderr.splitlines() if "spot-features done" in text][-1]
    worker = float(line.split("MiB (this process), ")[1].split(" MiB")[0])
    frames = int(pd.read_csv(videos)["frames"].sum())
    return {"frames": frames, "seconds": round(seconds, 2), "frames_per_second": round(frames / seconds, 1),
            "peak_worker_mib": worker}  # fmt: skip


def sentence(record: dict[str, Any]) -> str:
    """The docs' sentence on throughput and memory, from a record."""
    runs = record["runs"]
    small, large = runs["200px"], runs["640x480"]
    longer = next(name for name in runs if "x" in name.split()[-1] and name.startswith("200px "))
    return (
        f"On {record['machine']} ({record['date']}, `{record['command']}`), one shard job on "
        f"{record['cores']} cores computes the spotting features of two {small['video_seconds']:.0f}-s videos at "
        f"**{small['frames_per_second']:.0f} frames/s** with the generator's 200-px frames and "
        f"**{large['frames_per_second']:.0f} frames/s** with 640 x 480 frames (30 fps video: "
        f"{small['frames_per_second'] / 30:.1f}x and {large['frames_per_second'] / 30:.1f}x real time); the largest "
        f"worker's peak memory is {small['peak_worker_mib']:.0f} MiB for a {small['video_seconds']:.0f}-s video and "
        f"{runs[longer]['peak_worker_mib']:.0f} MiB for a {runs[longer]['video_seconds']:.0f}-s one "
        f"({record['memory_ratio_longer']:.2f}x for {runs[longer]['video_seconds'] / small['video_seconds']:.0f}x the "
        "length)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--longer", type=int, default=10)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="merec-spot-speed-") as tmp:
        for name, size, seconds in (
            ("200px", None, args.seconds),
            ("640x480", 640, args.seconds),
            (f"200px x{args.longer}", None, args.seconds * args.longer),
        ):
            root = Path(tmp) / name.replace(" ", "_")
            runs[name] = {"video_seconds": seconds, **measure(root, make_videos(root, seconds, size))}
            print(name, runs[name], file=sys.stderr)
            shutil.rmtree(root)
    record = {"command": " ".join(["python benchmarks/spot_throughput.py", *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d"), "machine": cpu_description(), "cores": 2, "runs": runs,
              "memory_ratio_longer": round(runs[f"200px x{args.longer}"]["peak_worker_mib"] /
                                           runs["200px"]["peak_worker_mib"], 2)}  # fmt: skip
    write_record(record, args.output, sentence(record))


if __name__ == "__main__":
    main()
