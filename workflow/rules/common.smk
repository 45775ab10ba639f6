# Shared helpers: params validation, datasets, shards, code and params inputs, the fold fan-out, and
# the state Snakemake shares with DVC (workflow/rules/state.py).
#
# What reruns a job: Snakemake runs with `rerun-triggers: mtime` (workflow/profiles/default), so a job
# reruns when one of its input FILES is newer and has other content. Every rule therefore lists, as
# inputs, the params file of the params.yaml sections it reads (`params_of`), the merec source files
# of its stage (`code`), and the manifests of the stage before it; DVC tracks the same sections, code
# and data in dvc.yaml. `params:` is not used: Snakemake's own record of params would go stale
# whenever DVC runs a stage.
import os
import sys
from pathlib import Path

import pandas as pd
import yaml

from merec.config import dataset_names, dataset_spec, spotted_dataset, validate_params
from merec.datasets.formats import LAYOUTS
from merec.errors import MerecError

sys.path.insert(0, str(Path(workflow.basedir) / "rules"))
import state  # noqa: E402  (workflow/rules/state.py)

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

SYNTH_ROOT = "data/raw/synth"  # written by the synth rule; every other dataset is the user's
SYNTH_LV_ROOT = "data/raw/synth_lv"  # written by the synth_lv rule (long videos for spotting)
DVC_DATASETS = sorted(config["datasets"])  # `dvc repro` runs these (dvc.yaml: foreach over datasets)
DECLARED = dataset_names(config)  # these plus the catalogue: any can be asked for by name
LONG_VIDEOS = sorted(config.get("long_videos") or {})  # long-video datasets in dvc.yaml (spotting)
LONG_DECLARED = sorted(LONG_VIDEOS + list(config.get("long_video_catalogue") or {}))
SPOTTED = {spotted_dataset(lv): lv for lv in LONG_DECLARED}  # clip dataset -> its long-video dataset
SHARDS = list(config.get("ingest", {}).get("shards", [0, 1, 2, 3]))
# Cores of one machine (--cores); a cluster run has no such number: its jobs take 1 core unless the
# profile's set-threads says otherwise.
try:
    CORES = workflow.cores if isinstance(workflow.cores, int) and 0 < workflow.cores < 10_000 else 1
except WorkflowError:  # commands that run no job (--report, --lint) give no --cores
    CORES = 1
SHARD_THREADS = max(1, CORES // len(SHARDS))  # the shard jobs of a stage share every core


def present(dataset):
    """Whether a dataset's files are there (the synthetic one is made by the synth rule)."""
    spec = dataset_spec(config, dataset)
    return spec["root"] == SYNTH_ROOT or all(Path(root).exists() for root in dataset_roots(spec))


def dataset_parts(spec):
    """(params key suffix, root, format) of the dataset and, for a composite, of each component."""
    parts = [("root", spec["root"], spec["format"])]
    for name, source in (spec.get("sources") or {}).items():
        source = source if isinstance(source, dict) else {"root": source}
        parts.append((f"sources.{name}.root", source.get("root") or f"data/raw/{name}", source.get("format", name)))
    return parts


def dataset_roots(spec):
    """The dataset's root and, for a composite, each component's root."""
    return [root for _, root, _ in dataset_parts(spec)]


RUNNABLE = [name for name in DVC_DATASETS if present(name)]
for _name in sorted(set(DVC_DATASETS) - set(RUNNABLE)):
    print(f"merec: dataset {_name} is left out: {dataset_spec(config, _name)['root']} does not exist", file=sys.stderr)

wildcard_constraints:
    dataset="|".join(DECLARED + sorted(SPOTTED)),
    lv="|".join(LONG_DECLARED) or "(?!)",
    shard="[0-9]+",
    fold="[A-Za-z0-9_.-]+",
    seed="[0-9]+",


PROJECT = Path(workflow.basedir).parent  # the checkout; the working directory may be another (.test/)


def sources(*paths):
    """The files of ``paths`` (files, or folders taken whole as dvc.yaml's deps take them), sorted,
    relative to the working directory."""
    found = set()
    for path in (PROJECT / p for p in paths):
        files = [path] if path.is_file() else path.rglob("*")
        found.update(
            os.path.relpath(f) for f in files if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
        )
    return sorted(found)


# Source files whose change reruns a stage (and, through its outputs, everything after it): the
# same files as the stage's code deps in dvc.yaml. Shared helpers (merec/errors.py, io.py,
# runtime.py, shards.py, config.py, cli.py) do not change results and are not listed; MagNet
# training lives in its own subpackage, so it never reruns magnify.
MAGNIFY = ("__init__.py", "evm.py", "magnet.py", "params.py")
SYNTH = ("__init__.py", "clips.py", "identities.py", "motion.py")  # the long-video generator is synth_lv's
CODE = {
    "magnet_train": sources("merec/checkpoints.py", "merec/magnify/magnet.py", "merec/magnify/training"),
    "synth": sources("merec/landmarks.py", *(f"merec/synth/{name}" for name in SYNTH)),
    "ingest": sources("merec/datasets"),
    "face": sources("merec/face.py", "merec/frontalize.py", "merec/landmarks.py", "merec/weights/face_shape.csv"),
    "interpolate": sources("merec/checkpoints.py", "merec/interpolate"),
    "magnify": sources("merec/checkpoints.py", *(f"merec/magnify/{name}" for name in MAGNIFY)),
    "features": sources("merec/features.py", "merec/frontalize.py", "merec/weights/face_shape.csv"),
    "au_graph": sources("merec/au_graph.py"),
    "train": sources("merec/checkpoints.py", "merec/models", "merec/runs.py", "merec/train.py"),
    "evaluate": sources("merec/evaluate", "merec/runs.py", "merec/scores.py"),
    "strips": sources("merec/strips.py"),
    "synth_lv": sources("merec/landmarks.py", "merec/synth"),
    "ingest_lv": sources("merec/datasets"),
    "spot_features": sources(
        "merec/face.py", "merec/features.py", "merec/frontalize.py", "merec/landmarks.py", "merec/spotting/features.py"
    ),
    "spot_score": sources(*(f"merec/spotting/{name}" for name in ("learned.py", "peaks.py", "settings.py", "stage.py"))),
    "spot_train": sources("merec/checkpoints.py", *(f"merec/spotting/{n}" for n in ("learned.py", "settings.py", "stage.py"))),
    "spot_evaluate": sources(*(f"merec/spotting/{name}" for name in ("metrics.py", "peaks.py", "settings.py", "stage.py"))),
    # recognition.py reads the spotted intervals through stage.py's reader
    "spot_clips": sources("merec/datasets", *(f"merec/spotting/{n}" for n in ("metrics.py", "recognition.py", "stage.py"))),
    "spot_strs": sources(
        "merec/runs.py", "merec/scores.py", *(f"merec/spotting/{n}" for n in ("metrics.py", "recognition.py", "stage.py"))
    ),
}
SPOT_SCORE_PARAMS = ("spot.method", "spot.baseline", "spot.learned")
SPOT_EVALUATE_PARAMS = ("spot.method", "spot.p", "spot.control_draws", "spot.seed")


def code(stage):
    return CODE[stage]


def params_of(*keys):
    """The params file of a rule: the params.yaml values at the dotted ``keys`` (as DVC tracks them)."""
    values = {}
    for key in keys:
        node = config
        for part in key.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        values[key] = node
    return state.params_file("+".join(keys), values)


def ingest_params(wildcards):
    key = "datasets" if wildcards.dataset in config["datasets"] else "catalogue"
    return params_of(f"{key}.{wildcards.dataset}", "ingest")


def raw_inputs(wildcards):
    """The dataset's files: the synth rule's output, or a fingerprint of the user's dataset folder(s)."""
    spec = dataset_spec(config, wildcards.dataset)
    if spec["root"] == SYNTH_ROOT:
        return [SYNTH_ROOT]
    missing = [part for part in dataset_parts(spec) if not Path(part[1]).exists()]
    if missing:
        key, root, fmt = missing[0]
        section = "datasets" if wildcards.dataset in config["datasets"] else "catalogue"
        raise WorkflowError(
            f"dataset {wildcards.dataset}: {root} does not exist. Real datasets are licensed and not "
            f"shipped: create {root} and put the {fmt} files in it as released "
            f"({LAYOUTS.get(fmt, 'see docs/datasets.md')}); layouts in docs/datasets.md#layouts. Or point "
            f"{section}.{wildcards.dataset}.{key} in params.yaml to where they are."
        )
    return [state.raw_fingerprint(wildcards.dataset, dataset_roots(spec))]


def lv_ingest_params(wildcards):
    key = "long_videos" if wildcards.lv in (config.get("long_videos") or {}) else "long_video_catalogue"
    return params_of(f"{key}.{wildcards.lv}", "ingest")


def lv_raw_inputs(wildcards):
    """The long-video dataset's files: the synth_lv rule's output, or a fingerprint of the user's folder."""
    spec = dataset_spec(config, wildcards.lv, long_videos=True)
    if spec["root"] == SYNTH_LV_ROOT:
        return [SYNTH_LV_ROOT]
    if not Path(spec["root"]).exists():
        raise WorkflowError(
            f"long-video dataset {wildcards.lv}: {spec['root']} does not exist. Long-video releases are licensed "
            f"and not shipped: put the {spec['format']} release there as downloaded (docs/spotting.md), or point "
            f"its root in params.yaml to where it is."
        )
    return [state.raw_fingerprint(wildcards.lv, [spec["root"]])]


def lv_shard_manifests(stage):
    """Input function: the manifests of every shard of a per-video stage of the job's long-video dataset."""

    def manifests(wildcards):
        return expand(f"data/interim/{wildcards.lv}/{stage}/shard-{{shard}}.json", shard=SHARDS)

    return manifests


def spot_curves(wildcards):
    """The curves spot_evaluate reads: the baseline's, or the learned spotter's of every fold and seed."""
    if config["spot"]["method"] == "baseline":
        return [f"results/{wildcards.lv}/spotting/scores/baseline/curves.npz"]
    videos = checkpoints.ingest_lv.get(lv=wildcards.lv).output.videos
    folds = sorted(pd.read_csv(videos, dtype=str)["fold"].unique())
    return expand(
        "results/{lv}/spotting/scores/learned/seed-{seed}/{fold}/curves.npz",
        lv=wildcards.lv,
        seed=config["spot"]["learned"]["seeds"],
        fold=folds,
    )


def spot_resources():
    return {"gpu": 1} if config["spot"]["learned"].get("device") == "cuda" else {}


def shard_manifests(stage, dataset_folder="interim"):
    """Input function: the manifests of every shard of a per-sample stage of the job's dataset."""

    def manifests(wildcards):
        return expand(
            f"data/{dataset_folder}/{wildcards.dataset}/{stage}/shard-{{shard}}.json", shard=SHARDS
        )

    return manifests


def dataset_folds(dataset):
    """The LOSO folds of a dataset, once its samples table exists (ingest, or spot_clips for a clip dataset)."""
    if dataset in SPOTTED:
        samples = checkpoints.spot_clips.get(lv=SPOTTED[dataset]).output.samples
    else:
        samples = checkpoints.ingest.get(dataset=dataset).output.samples
    return sorted(pd.read_csv(samples, dtype=str)["fold"].unique())


def fold_ids(wildcards):
    return dataset_folds(wildcards.dataset)


def train_seeds():
    return config["train"].get("seeds", [0])


def fold_dirs(wildcards):
    """One training run per LOSO fold and seed."""
    return expand(
        "results/{dataset}/folds/seed-{seed}/{fold}",
        dataset=wildcards.dataset,
        seed=train_seeds(),
        fold=fold_ids(wildcards),
    )


def spotted_fold_dirs(wildcards):
    """The training runs of the clip dataset of a long-video dataset: one per LOSO fold and seed."""
    dataset = spotted_dataset(wildcards.lv)
    return expand(
        "results/{dataset}/folds/seed-{seed}/{fold}", dataset=dataset, seed=train_seeds(), fold=dataset_folds(dataset)
    )


def train_resources():
    return {"gpu": 1} if config["train"].get("device") == "cuda" else {}


def magnet_weights(wildcards):
    """The MagNet checkpoint the magnify stage reads (the shipped one is the magnet_train rule's output)."""
    return config.get("magnify", {}).get("magnet", {}).get("checkpoint", "merec/weights/magnet.pt")


def pretrained_weights(wildcards):
    """The user-given pretrained backbone the chosen model starts from (``train.models.<m>.weights``), if any."""
    train = config["train"]
    path = train.get("models", {}).get(train.get("model"), {}).get("weights", "")
    return [path] if path else []


def reported(path, caption, category, **labels):
    """An output that goes into `snakemake --report`, under ``category`` and the dataset."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory="{dataset}",
        labels={"dataset": "{dataset}", **labels},
    )


# ----------------------------------------------------------------------------------------- one state


def dvc_stage(job):
    """The DVC stage (dvc.yaml) that holds a Snakemake job, or None."""
    name, wildcards = job.rule.name, job.wildcards
    if name in ("synth", "magnet_train", "synth_lv"):
        return name
    lv = getattr(wildcards, "lv", None)
    if lv is not None:
        if lv not in (config.get("long_videos") or {}):
            return None  # the long-video catalogue is not in dvc.yaml
        if name == "spot_features":
            return f"{name}@{lv}-{wildcards.shard}"
        if name in ("spot_baseline", "spot_learned"):
            return f"spot_score@{lv}"
        return f"{name}@{lv}" if name in ("ingest_lv", "spot_train", "spot_evaluate", "spot_clips", "spot_strs") else None
    dataset = getattr(wildcards, "dataset", None)
    if dataset in SPOTTED:  # the clip dataset of a long-video dataset: its own stages in dvc.yaml
        lv = SPOTTED[dataset]
        if lv not in (config.get("long_videos") or {}):
            return None
        if name in ("face", "interpolate", "magnify", "features"):
            return f"{name}_spotted@{lv}-{wildcards.shard}"
        return f"{name}_spotted@{lv}" if name in ("au_graph", "train") else None
    if dataset not in config["datasets"]:
        return None  # datasets of the catalogue are not in dvc.yaml
    if name in ("face", "interpolate", "magnify", "features"):
        return f"{name}@{dataset}-{wildcards.shard}"
    if name in ("ingest", "au_graph", "train", "train_all", "evaluate", "strips"):
        return f"{name}@{dataset}"
    return None


def adopt_dvc_outputs():
    """DVC -> Snakemake: outputs of stages that dvc.lock says are up to date are taken as they are.

    Runs in the main Snakemake process only (also for a dry run, which must show what really
    differs); cluster jobs, which parse the workflow again, leave the state alone.
    """
    if workflow.is_main_process:
        # the params files that input functions write: there before the outputs are touched, or a
        # fresh checkout would find them newer than what DVC made
        for dataset in DVC_DATASETS:
            params_of(f"datasets.{dataset}", "ingest")
        for lv in LONG_VIDEOS:
            params_of(f"long_videos.{lv}", "ingest")
        state.sync_from_dvc(log=lambda text: print(text, file=sys.stderr))


def record_in_dvc():
    """Snakemake -> DVC: the DVC stages every job of this run belongs to, recorded in dvc.lock.

    A training stage holds every fold and seed, so it is recorded only together with its evaluate
    job (which needs all of them); so are the spotter's curves with spot_evaluate and the clip
    dataset's training with spot_strs. Reads the run's jobs from Snakemake's DAG: the one use of a
    Snakemake internal here, checked by the workflow tests.
    """
    try:
        jobs = list(workflow.dag.jobs)
    except AttributeError:  # pragma: no cover - a Snakemake release without it: tell, do not guess
        print("merec: this Snakemake does not expose its jobs; run `dvc commit` to record the results", file=sys.stderr)
        return
    stages = {dvc_stage(job) for job in jobs} - {None}
    evaluated = {stage.split("@", 1)[1] for stage in stages if stage.startswith("evaluate@")}
    stages = {s for s in stages if not s.startswith("train@") or s.split("@", 1)[1] in evaluated}
    spotted = {stage.split("@", 1)[1] for stage in stages if stage.startswith("spot_evaluate@")}
    stages = {s for s in stages if not s.startswith("spot_score@") or s.split("@", 1)[1] in spotted}
    scored = {stage.split("@", 1)[1] for stage in stages if stage.startswith("spot_strs@")}
    stages = {s for s in stages if not s.startswith("train_spotted@") or s.split("@", 1)[1] in scored}
    ran = {dvc_stage(job) for job in workflow.dag.finished_jobs} - {None}
    state.commit_to_dvc(stages, log=lambda text: print(text, file=sys.stderr), ran=ran)
