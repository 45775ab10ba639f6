"""Training runs on disk: where one LOSO fold's run with one seed lives, and its files.

A run of fold ``f`` with seed ``S`` is the folder ``<folds>/seed-<S>/<f>/`` holding

* ``model.pt`` — the state dict (tensors only),
* ``predictions.csv`` — one row per held-out sample: ``sample, subject, fold, label, predicted``
  and one ``p_<class>`` column per class,
* ``history.csv`` — one row per epoch: ``epoch, train_loss, train_accuracy`` (and ``val_loss``,
  ``val_accuracy`` with validation subjects),
* ``fold.json`` — provenance: seed, params, chosen epoch, subjects, sizes, input scaling, timing.

The writer (used by the train stage) and the readers (used by evaluate) live here together, and
nothing here imports torch: ``merec evaluate`` stays light.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, write_csv, write_json

LOG = logging.getLogger("merec.runs")
SEED_PREFIX = "seed-"
MODEL = "model.pt"
PREDICTIONS = "predictions.csv"
HISTORY = "history.csv"
INFO = "fold.json"
ID_COLUMNS = {"sample": str, "subject": str, "fold": str}


def seed_dir_name(seed: int) -> str:
    """Folder of one seed's runs: ``seed-<seed>``."""
    return f"{SEED_PREFIX}{seed}"


def run_dir(folds_dir: PathLike, seed: int, fold: str) -> Path:
    """Folder of the run of ``fold`` with ``seed``: ``<folds_dir>/seed-<seed>/<fold>``."""
    return Path(folds_dir) / seed_dir_name(seed) / fold


def write_run(
    target: PathLike,
    predictions: pd.DataFrame,
    history: pd.DataFrame,
    info: Mapping[str, Any],
    save_model: Callable[[Path], None],
) -> None:
    """Write one run's four files into ``target`` atomically; ``save_model(path)`` writes ``model.pt``."""
    with atomic_dir(target) as tmp:
        save_model(Path(tmp) / MODEL)
        write_csv(Path(tmp) / PREDICTIONS, predictions)
        write_csv(Path(tmp) / HISTORY, history)
        write_json(Path(tmp) / INFO, info)


def folds_root(paths: Sequence[PathLike] | PathLike) -> Path:
    """The folds folder of ``paths``: itself, or the one that holds the given run folders."""
    items = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if len(items) == 1 and not (items[0] / PREDICTIONS).exists() and not items[0].name.startswith(SEED_PREFIX):
        return items[0]
    roots = {item.parent.parent for item in items}
    bad = [str(item) for item in items if not item.parent.name.startswith(SEED_PREFIX)]
    if bad or len(roots) != 1:
        raise MerecError(
            f"run folders must be <folds>/seed-<S>/<fold> of one folds folder; got {', '.join(map(str, items[:3]))}"
        )
    return roots.pop()


def find_seeds(folds_dir: PathLike) -> list[int]:
    """Seeds with a ``seed-<S>/`` folder under ``folds_dir``."""
    seeds = []
    for path in Path(folds_dir).glob(f"{SEED_PREFIX}*"):
        suffix = path.name[len(SEED_PREFIX) :]
        if path.is_dir() and suffix.isdigit():
            seeds.append(int(suffix))
    return sorted(seeds)


def resolve_seeds(folds_dir: PathLike, seeds: Sequence[int] | None) -> list[int]:
    """The seeds to read: ``seeds`` (each must have a folder) or every ``seed-<S>/`` found."""
    folder = Path(folds_dir)
    found = find_seeds(folder)
    if seeds is None:
        if not found:
            flat = sorted(p.parent.name for p in folder.glob(f"*/{PREDICTIONS}"))
            hint = (
                f" (found fold folders {', '.join(flat[:3])} without a seed level, written by an older merec: "
                "delete them and retrain)"
                if flat
                else ""
            )
            raise MerecError(f"{folder}: no {SEED_PREFIX}<S>/ folders{hint}; run the training jobs first")
        return found
    wanted = list(dict.fromkeys(int(s) for s in seeds))
    missing = [s for s in wanted if s not in found]
    if missing:
        raise MerecError(
            f"{folder}: no predictions for seed(s) {', '.join(map(str, missing))} "
            f"(expected {folder / seed_dir_name(missing[0])}/<fold>/); run their training jobs"
        )
    ignored = sorted(set(found) - set(wanted))
    if ignored:
        LOG.warning("ignoring %s: not among the seeds %s", ", ".join(seed_dir_name(s) for s in ignored), wanted)
    return wanted


def fold_runs(seed_dir: Path, expected_folds: Sequence[str]) -> list[Path]:
    """Every expected fold's run folder of one seed; missing or extra folds are an error."""
    found = sorted(p.parent.name for p in seed_dir.glob(f"*/{PREDICTIONS}") if not p.parent.name.startswith("."))
    missing = sorted(set(expected_folds) - set(found))
    extra = sorted(set(found) - set(expected_folds))
    if missing:
        raise MerecError(f"{seed_dir}: no predictions for folds {', '.join(missing)}; run their training jobs")
    if extra:
        raise MerecError(
            f"{seed_dir}: predictions for folds not in the samples table ({', '.join(extra)}); "
            "they are stale: delete them and rerun"
        )
    return [seed_dir / f for f in found]


def read_predictions(
    folds_dir: PathLike, expected_folds: Sequence[str], seeds: Sequence[int] | None = None
) -> pd.DataFrame:
    """Every run's ``predictions.csv`` (a ``seed`` column first), over seeds and folds."""
    frames = []
    for seed in resolve_seeds(folds_dir, seeds):
        for folder in fold_runs(Path(folds_dir) / seed_dir_name(seed), expected_folds):
            frame = pd.read_csv(folder / PREDICTIONS, dtype=ID_COLUMNS)
            frame.insert(0, "seed", seed)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_histories(folds_dir: PathLike, runs: Iterable[tuple[int, str]]) -> pd.DataFrame:
    """``history.csv`` of each (seed, fold) run, stacked, with ``fold`` and ``seed`` columns."""
    frames = []
    for seed, fold in runs:
        path = run_dir(folds_dir, seed, fold) / HISTORY
        if not path.is_file():
            raise MerecError(f"{path} is missing; the training run is incomplete: rerun it")
        history = pd.read_csv(path)
        history["fold"], history["seed"] = fold, int(seed)
        frames.append(history)
    return pd.concat(frames, ignore_index=True)


def read_info(folds_dir: PathLike, seed: int, fold: str) -> dict[str, Any] | None:
    """A run's ``fold.json`` (None when it has none)."""
    path = run_dir(folds_dir, seed, fold) / INFO
    return json.loads(path.read_text()) if path.is_file() else None


def chosen_epoch(info: Mapping[str, Any] | None) -> int | None:
    """The epoch whose model predicted, from a run's ``fold.json``."""
    if info is None:
        return None
    return info.get("chosen_epoch", info.get("params", {}).get("epochs"))
