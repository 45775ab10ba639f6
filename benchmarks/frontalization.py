"""How far each alignment leaves a turned face's landmarks from where the frontal face puts them.

For every subject of the synthetic dataset (``synth`` params of params.yaml, draws ``--draws``) it
renders the neutral face frontally and turned rigidly by each yaw (and pitch) of :data:`ANGLES`
(:func:`turned_face`: the generator's ellipsoid-and-nose depth map, which the frontalization's
generic landmark depths know nothing about, rotated with foreshortening; no noise). dlib finds
the landmarks on each render; the face stage aligns it with ``face.align: similarity`` and with
``frontalize``. The error is the mean distance (px of the ``face.size`` crop) of the 51 inner
landmarks (brows, eyes, nose, mouth) from those of the frontal render under similarity
alignment; per angle, the mean ± sd over subjects of each method and of their paired difference,
with a 95% t-interval over subjects.

    python benchmarks/frontalization.py --output benchmarks/results/frontalization.json   # about 1 minute

docs/face.md quotes the JSON it writes (a test keeps the two in step). The code and its defaults
were fixed on the development draw (``--draws 100``) before the test draws were measured.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np
import yaml
from _record import write_record
from scipy import stats

from merec.face import FaceParams, align_clip
from merec.landmarks import eye_centres
from merec.runtime import software_versions
from merec.synth.clips import SynthParams, make_subjects
from merec.synth.motion import turned, turned_source

ROOT = Path(__file__).resolve().parents[1]
INNER = np.arange(17, 68)
ANGLES = ((0, 0), (10, 0), (20, 0), (25, 0), (0, 10), (0, 20))  # (yaw, pitch) in degrees


def turned_face(subject: object, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """The subject's neutral face turned rigidly by ``yaw_deg`` and ``pitch_deg`` about the eyes'
    midpoint, with foreshortening (the generator's ``head_pose_deg`` turn, :func:`turned_source`)."""
    centre = np.mean(eye_centres(subject.landmarks), axis=0)
    source = turned_source(subject.depth, subject.pivot, centre, yaw_deg, pitch_deg)
    frame = subject.render(turned(source, np.zeros_like(source)), np.zeros(2), 0.0, 1.0)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def landmark_errors(subject: object, angles: tuple[tuple[float, float], ...], face: dict) -> dict[str, list[float]]:
    """Per angle ("yaw/pitch"): the inner-landmark error of similarity and frontalize alignment."""
    similarity = FaceParams.from_mapping(face | {"align": "similarity"})
    frontalize = FaceParams.from_mapping(face | {"align": "frontalize"})
    reference = align_clip([turned_face(subject, 0, 0)], 0, "frontal", similarity)["landmarks"][INNER]
    errors = {}
    for yaw, pitch in angles:
        frame = turned_face(subject, yaw, pitch)
        row = []
        for params in (similarity, frontalize):
            landmarks = align_clip([frame], 0, f"yaw {yaw}, pitch {pitch}", params)["landmarks"][INNER]
            row.append(float(np.linalg.norm(landmarks - reference, axis=1).mean()))
        errors[f"{yaw}/{pitch}"] = row
    return errors


def mean_sd(values: np.ndarray) -> list[float]:
    return [round(float(values.mean()), 3), round(float(values.std(ddof=1)), 3)]


def measure(params: dict, draws: list[int], angles: tuple[tuple[float, float], ...]) -> list[dict]:
    """One row per angle: mean ± sd over every subject of every draw."""
    face = {key: value for key, value in params["face"].items() if key != "align"}
    per_subject = []
    for draw in draws:
        synth = SynthParams.from_mapping(params["synth"] | {"seed": draw})
        for subject in make_subjects(synth).values():
            per_subject.append(landmark_errors(subject, angles, face))
    rows = []
    for yaw, pitch in angles:
        values = np.array([errors[f"{yaw}/{pitch}"] for errors in per_subject])  # (subjects, 2)
        difference = values[:, 1] - values[:, 0]
        half = stats.t.ppf(0.975, len(difference) - 1) * difference.std(ddof=1) / np.sqrt(len(difference))
        rows.append(
            {
                "yaw_deg": yaw,
                "pitch_deg": pitch,
                "similarity_px": [round(float(values[:, 0].mean()), 3), round(float(values[:, 0].std(ddof=1)), 3)],
                "frontalize_px": [round(float(values[:, 1].mean()), 3), round(float(values[:, 1].std(ddof=1)), 3)],
                "difference_px": [round(float(difference.mean()), 3), round(float(difference.std(ddof=1)), 3)],
                "difference_ci95": [
                    round(float(difference.mean() - half), 3),
                    round(float(difference.mean() + half), 3),
                ],
                "subjects": len(values),
            }
        )
    return rows


def markdown(record: dict) -> str:
    """The table docs/face.md quotes."""
    lines = [
        "| yaw | pitch | similarity (px) | frontalize (px) | frontalize minus similarity (px) | its 95% interval |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in record["rows"]:
        cells = [
            f"{row[key][0]:.2f} ± {row[key][1]:.2f}" for key in ("similarity_px", "frontalize_px", "difference_px")
        ]
        low, high = row["difference_ci95"]
        verdict = "" if low > 0 or high < 0 else ", not resolved"
        interval = f"{low:+.2f} to {high:+.2f}{verdict}"
        lines.append(f"| {row['yaw_deg']}° | {row['pitch_deg']}° | " + " | ".join(cells) + f" | {interval} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    rows = measure(params, args.draws, ANGLES)
    record = {
        "command": "python benchmarks/frontalization.py"
        + (f" --draws {' '.join(map(str, args.draws))}" if args.draws != [0, 1] else "")
        + (f" --output {args.output}" if args.output else ""),
        "date": date.today().isoformat(),
        "draws": args.draws,
        "face_size": params["face"]["size"],
        "environment": software_versions(),
        "rows": rows,
    }
    write_record(record, args.output, markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
