"""How different the synthetic dataset's identities are: face shape and a face-recognition network's view.

For the default ``synth`` parameters (params.yaml) it builds every subject's identity and measures,
for each pair, the Procrustes shape distance of their 68 landmarks and the distance between dlib's
face-recognition descriptors (dlib's documented rule: under 0.6, the same person). Pairs are split
into *real-real* (two photos), *same source* (a morph and its photo, or two morphs of one photo)
and *across sources*.

    python benchmarks/identities.py --output benchmarks/results/identities.json   # about 20 s

docs/synthetic-dataset.md quotes the JSON it writes (a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import date
from pathlib import Path

import numpy as np
import yaml
from _record import write_record

ROOT = Path(__file__).resolve().parents[1]


def summary(values: list[float]) -> dict[str, float | int]:
    """Count, min, median and max of some distances."""
    return {
        "pairs": len(values),
        "min": round(float(np.min(values)), 4),
        "median": round(float(np.median(values)), 4),
        "max": round(float(np.max(values)), 4),
    }


def measure(params: dict) -> dict:
    """Shape and descriptor distances between the identities the ``synth`` params make."""
    from merec.landmarks import SAME_PERSON_DISTANCE, detect_faces, face_descriptor
    from merec.synth import SynthParams
    from merec.synth.identities import make_identities, shape_distance

    synth = SynthParams.from_params(params)
    identities = make_identities(synth.subjects, np.random.default_rng([synth.seed, 1]), synth.photos, synth.morph)
    descriptors = [face_descriptor(i.image, detect_faces(i.image, upsample=1)[0]) for i in identities]
    groups: dict[str, dict[str, list[float]]] = {}
    for (a, first), (b, second) in itertools.combinations(enumerate(identities), 2):
        base_a = first.name.split("-morph")[0]
        base_b = second.name.split("-morph")[0]
        kind = "real-real" if first.real and second.real else "same source" if base_a == base_b else "across sources"
        entry = groups.setdefault(kind, {"shape": [], "descriptor": []})
        entry["shape"].append(shape_distance(first.landmarks, second.landmarks))
        entry["descriptor"].append(float(np.linalg.norm(descriptors[a] - descriptors[b])))
    return {
        "identities": len(identities),
        "real": sum(identity.real for identity in identities),
        "same_person_distance": SAME_PERSON_DISTANCE,
        "pairs": {
            kind: {
                "shape": summary(values["shape"]),
                "descriptor": summary(values["descriptor"]),
                "same_person_pairs": int(np.sum(np.array(values["descriptor"]) < SAME_PERSON_DISTANCE)),
            }
            for kind, values in sorted(groups.items())
        },
    }


def sentence(result: dict) -> str:
    """The docs' summary of a result (docs/synthetic-dataset.md quotes it; a test keeps the two in step)."""
    pairs = result["pairs"]
    real, same, across = pairs["real-real"], pairs["same source"], pairs["across sources"]

    def apart(entry: dict) -> str:
        return f"{entry['descriptor']['pairs'] - entry['same_person_pairs']} of {entry['descriptor']['pairs']}"

    return (
        f"{result['date']}): the Procrustes shape distance of the landmarks is {real['shape']['median']:.4f}"
        f" between the two real people, median {same['shape']['median']:.4f} (min {same['shape']['min']:.4f})"
        f" between identities from the same photo and {across['shape']['median']:.4f} across photos: the"
        " morphs differ in face shape about as much as two real people do. dlib's face-recognition"
        f" descriptors put {apart(across)} pairs across photos at least {result['same_person_distance']}"
        f" apart (different people by dlib's rule; the real pair: {real['descriptor']['median']:.2f}), but"
        f" only {apart(same)} pairs from the same photo (median {same['descriptor']['median']:.2f})."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, help="write the JSON here (else print it)")
    args = parser.parse_args(argv)
    result = {"date": date.today().isoformat(), **measure(yaml.safe_load(args.params.read_text()))}
    write_record(result, args.output, sentence(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
