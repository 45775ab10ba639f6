# Shared helpers: params validation, code dependencies, dataset inputs and the fold fan-out.
from pathlib import Path
import pandas as pd
import yaml

from merec.config import dataset_spec, validate_params
from merec.io import MerecError

try:
    validate_params(config, "params.yaml")
except MerecError as exc:
    raise WorkflowError(str(exc)) from None

with open("params.yaml") as _handle:
    if yaml.safe_load(_handle) != config:
        raise WorkflowError(
            "params.yaml is the single source of parameters: --config/--configfile overrides are not "
            "supported because every stage reads params.yaml. Edit params.yaml (or use `dvc exp run -S`)."
        )

DATASETS = sorted(config["datasets"])
SYNTH_ROOT = "data/raw/synth"

wildcard_constraints:
    dataset="|".join(DATASETS),
    fold="[A-Za-z0-9_.-]+",
    seed="[0-9]+",


def sources(*patterns):
    """The package's source files matching glob patterns (relative to the project root), sorted."""
    return sorted({str(path) for pattern in patterns for path in Path().glob(pattern)})


# Source files whose change reruns a stage (and, through its outputs, everything after it).
# Shared helpers (merec/errors.py, io.py, runtime.py, config.py, cli.py) do not change results and
# are not listed; MagNet training lives in its own subpackage, so it never reruns magnify.
CODE = {
    "synth": sources("merec/datasets/synth.py", "merec/landmarks.py"),
    "ingest": [f for f in sources("merec/datasets/*.py") if not f.endswith("synth.py")],
    "face": sources("merec/face.py", "merec/landmarks.py"),
    "interpolate": sources("merec/interpolate/*.py", "merec/checkpoints.py"),
    "magnify": sources("merec/magnify/*.py", "merec/checkpoints.py"),
    "magnet_train": sources("merec/magnify/magnet.py", "merec/magnify/training/*.py", "merec/checkpoints.py"),
    "features": sources("merec/features.py"),
    "au_graph": sources("merec/au_graph.py"),
    "train": sources("merec/train.py", "merec/runs.py", "merec/checkpoints.py", "merec/models/*.py"),
    "evaluate": sources("merec/evaluate/*.py", "merec/runs.py"),
    "strips": sources("merec/strips.py"),
}


def code(stage):
    return CODE[stage]


def magnet_weights(wildcards):
    """The MagNet checkpoint the magnify stage reads (the shipped one, or models/magnet/magnet.pt from magnet_train)."""
    return config["magnify"]["magnet"]["checkpoint"]


def raw_inputs(wildcards):
    """The dataset's root (and component roots for a composite); a clear error if missing."""
    spec = dataset_spec(config, wildcards.dataset)
    roots = [spec["root"], *spec.get("sources", {}).values()]
    for root in roots:
        if root != SYNTH_ROOT and not Path(root).exists():
            raise WorkflowError(
                f"dataset {wildcards.dataset}: {root} does not exist. Real datasets are licensed and not "
                f"shipped: put the {spec['format']} files there (see docs/datasets.md) or set "
                f"datasets.{wildcards.dataset}.root in params.yaml."
            )
    return roots


def fold_ids(wildcards):
    samples = checkpoints.ingest.get(dataset=wildcards.dataset).output.samples
    return sorted(pd.read_csv(samples, dtype=str)["fold"].unique())


def train_seeds():
    train = config["train"]
    return train["seeds"] if "seeds" in train else [train.get("seed", 0)]


def fold_dirs(wildcards):
    """One training run per LOSO fold and seed."""
    return expand(
        "results/{dataset}/folds/seed-{seed}/{fold}",
        dataset=wildcards.dataset,
        seed=train_seeds(),
        fold=fold_ids(wildcards),
    )


def train_resources():
    return {"gpu": 1} if config["train"]["device"] == "cuda" else {}
