"""What each recognition model costs on CPU at the default configuration: size, training, inference.

For every ``train.model`` it builds the model for the inputs that params.yaml's defaults make
(``interpolate.frames``, ``features.face_size``, ``roi_size``, ``volume_size``, the ROIs, the AU graph)
and measures, in one process and on one thread (as the ``train`` rule runs):

* ``parameters``: trainable parameters (``mdmo``: the SVM's weights after its closed-form fit);
* ``fold_seconds``: one LOSO fold trained with ``merec.train.train_fold`` on random inputs of
  those shapes (72 clips of 12 subjects, the embedded dataset's size; ``train.*`` as params.yaml);
* ``inference_ms_per_clip``: the trained model predicting batches of 16 clips (median of repeats);

and each time as a ratio to ``stst``'s, measured in the same run. Timing does not depend on the
inputs' values, so random inputs of the right shapes measure it faithfully.

    python benchmarks/model_costs.py --output benchmarks/results/model_costs.json   # about 3 minutes

docs/models.md quotes the JSON it writes (a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from _record import write_record

from merec.config import fill_defaults, schema
from merec.models import MODELS
from merec.runtime import software_versions
from merec.train import FeatureSet, TrainParams, train_fold

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["negative", "positive", "surprise"]


def default_inputs(params: dict, subjects: int = 12, per_subject: int = 6, seed: int = 0) -> FeatureSet:
    """Random features of the default shapes for ``subjects`` x ``per_subject`` clips, classes balanced."""
    frames = params["interpolate"]["frames"]
    face, roi, volume = (params["features"][k] for k in ("face_size", "roi_size", "volume_size"))
    n_rois = len(params["features"]["rois"])
    n = subjects * per_subject
    rng = np.random.default_rng(seed)
    inputs = {
        "face": rng.normal(size=(n, frames - 1, 3, face, face)).astype(np.float32),
        "rois": rng.normal(size=(n, n_rois, frames - 1, 3, roi, roi)).astype(np.float32),
        "frames": rng.uniform(size=(n, frames, 1, volume, volume)).astype(np.float32),
    }
    inputs["apex"] = inputs["face"][:, -1]
    inputs["frontal"] = inputs["frames"][:, -1]  # the apex seen frontally: a grey image of the same size
    inputs["landmarks"] = rng.uniform(0.25, 0.75, size=(n, 68, 2)).astype(np.float32)  # fractions of the crop
    samples = pd.DataFrame(
        {
            "sample": [f"c{i}" for i in range(n)],
            "subject": [f"synth/{i // per_subject:03d}" for i in range(n)],
            "fold": [f"synth-{i // per_subject:03d}" for i in range(n)],
            "label": [CLASSES[i % len(CLASSES)] for i in range(n)],
        }
    )
    return FeatureSet(samples, inputs, list(params["features"]["rois"]), {})


def measure(params: dict, name: str, features: FeatureSet, repeats: int, epochs: int | None = None) -> dict:
    """Parameters, one fold's training time and per-clip inference time of ``name``.

    ``epochs``: train only this many epochs and scale the time to the configured epochs (every
    epoch of a fixed-size fold costs the same; for models whose full CPU fold takes too long);
    the row then records ``fold_epochs_measured``.
    """
    train = copy.deepcopy(params["train"]) | {"model": name, "device": "cpu", "seeds": [0]}
    configured = train["epochs"]
    if epochs is not None:
        train["epochs"] = epochs
    train_params = TrainParams.from_mapping(train)
    aus = params["au_graph"]["aus"]
    adjacency = np.full((len(aus), len(aus)), 0.1, np.float32)
    np.fill_diagonal(adjacency, 0.0)
    started = time.perf_counter()
    result = train_fold(features, CLASSES, "synth-000", train_params, adjacency=adjacency, aus=aus)
    fold_seconds = time.perf_counter() - started
    model = result.model.eval()
    batch = {key: torch.from_numpy(value[:16]) for key, value in features.inputs.items()}
    batch["adjacency"] = torch.from_numpy(adjacency)
    times = []
    with torch.inference_mode():
        model(batch)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            model(batch)
            times.append(time.perf_counter() - started)
    row = {
        "parameters": int(sum(p.numel() for p in model.parameters()) or _closed_form_size(model)),
        "fold_seconds": round(fold_seconds * configured / train["epochs"], 2),
        "inference_ms_per_clip": round(1000 * statistics.median(times) / 16, 3),
    }
    return row | ({"fold_epochs_measured": epochs} if epochs is not None else {})


def _closed_form_size(model: torch.nn.Module) -> int:
    return int(sum(buffer.numel() for name, buffer in model.named_buffers() if "weight" in name or "bias" in name))


def _default_run(params: dict) -> dict:
    """What defines an ablation's default run: every param but other models' options (a param added
    since a record was made counts as its schema default, which keeps the earlier behaviour)."""
    params = fill_defaults(params, schema())
    train = params["train"]
    return params | {"train": train | {"models": {train["model"]: train["models"][train["model"]]}}}


def comparison_table(ablation: dict, costs: dict, published: dict, more: Sequence[dict] = ()) -> str:
    """The model comparison of docs/models.md from the ablation record (UF1 on the test draws), this
    script's record (size and CPU time) and the published composite scores (orientation only).

    ``more``: further ablation records of the same default and draws (a slow model's own run); each
    row's difference is against the default run of its own record."""
    for other in more:
        if (_default_run(other["baseline_params"]), other["draws"], other["seeds"]) != (
            _default_run(ablation["baseline_params"]),
            ablation["draws"],
            ablation["seeds"],
        ):
            raise ValueError(f"{other['command']}: another default, draws or seeds than the ablation record")
    rows = {row["name"]: row for record in (*more, ablation) for row in record["rows"][1:]}
    default = ablation["baseline_params"]["train"]["model"]
    rows[f"train.model: {default}"] = ablation["rows"][0]
    lines = [
        "| model | parameters | CPU s per fold (x stst) | ms per clip | UF1 (mean ± sd over seeds) | UF1 95% interval "
        "| UF1 minus default (95% interval) | published composite UF1 / UAR |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cost in costs["models"].items():
        row = rows.get(f"train.model: {name}")
        if row is None:
            scores = "not in the ablation record | | "
        else:
            low, high = row["uf1_ci95"]
            versus = row["versus_baseline"]
            if versus is None:
                difference = "(default)"
            else:
                d = versus["uf1"]
                verdict = "" if d["resolved"] else ", not resolved"
                difference = f"{d['difference']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}{verdict})"
            scores = f"{row['uf1']:.3f} ± {row['uf1_sd']:.3f} | {low:.3f}-{high:.3f} | {difference}"
        paper = published["models"].get(name)
        reference = f"{paper['uf1']:.4f} / {paper['uar']:.4f} ({paper['note']})" if paper else "none"
        measured = cost.get("fold_epochs_measured")
        scaled = f" (from {measured} epoch{'s' * (measured != 1)})" if measured else ""
        lines.append(
            f"| `{name}` | {cost['parameters']:,} | {cost['fold_seconds']:.1f} ({cost['fold_vs_stst']:.1f}){scaled} | "
            f"{cost['inference_ms_per_clip']:.2f} | {scores} | {reference} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--short",
        nargs="*",
        default=[],
        metavar="MODEL=EPOCHS",
        help="train these models for fewer epochs and scale their fold time to train.epochs (slow CPU folds)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the train rule runs
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    features = default_inputs(params)
    short = {name: int(epochs) for name, _, epochs in (item.partition("=") for item in args.short)}
    models = {}
    for name in args.models:
        print(f"{name} ...", file=sys.stderr, flush=True)
        models[name] = measure(params, name, features, args.repeats, short.get(name))
    if "stst" in models:
        for row in models.values():
            row["fold_vs_stst"] = round(row["fold_seconds"] / models["stst"]["fold_seconds"], 2)
            row["inference_vs_stst"] = round(row["inference_ms_per_clip"] / models["stst"]["inference_ms_per_clip"], 2)
    record = {
        "command": shlex.join(["python", "benchmarks/model_costs.py", *sys.argv[1:]]),
        "date": date.today().isoformat(),
        "clips": len(features.samples),
        "epochs": params["train"]["epochs"],
        "threads": 1,
        "environment": software_versions(),
        "models": models,
    }
    write_record(record, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
