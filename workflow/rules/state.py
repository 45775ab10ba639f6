"""One state for Snakemake and DVC: both tools judge the same files by their content.

Snakemake decides what to rerun from file modification times (``rerun-triggers: mtime`` in the
workflow profile), helped by the checksums it records for small input files; DVC from content
hashes in ``dvc.lock``. This module makes the two agree:

* **Provenance as files.** Every rule reads a small JSON file with the params sections it uses
  (:func:`params_file`) and, for a dataset on disk, a fingerprint of its files (paths, sizes and
  modification times: :func:`raw_fingerprint`). Both are rewritten only when their content changes.
  Stages hand each other small manifests whose content changes exactly when the data does.
* **Snakemake -> DVC.** After a successful run, the DVC stages Snakemake brought up to date are
  recorded in ``dvc.lock`` (``dvc commit``, :func:`commit_to_dvc`): ``dvc repro`` then has
  nothing to do.
* **DVC -> Snakemake.** When ``dvc.lock`` or a file DVC tracks changed since Snakemake last looked
  (``dvc repro``, ``dvc exp apply``, ``dvc checkout``, a fresh clone), :func:`sync_from_dvc` asks
  ``dvc status`` which stages are up to date and gives their outputs newer modification times than
  their inputs, in pipeline order: Snakemake then reruns nothing DVC made, and everything else as
  usual. The state of that check is kept in ``.snakemake/merec/state.json``.

Interfaces used: DVC's command line and file formats, and Snakemake's command line behaviour; two
exceptions: the list of jobs of a finished run, read in the Snakefile, and the recording itself
(:func:`commit_stages`), which does what ``dvc commit --force`` does through DVC's ``Repo`` object in
one pass (the command line rereads the project's YAML files for every stage; both timed in
``benchmarks/results/workflow_scale.json``) and falls back to the command line on a DVC release
without those methods.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

STATE_DIR = Path(".snakemake/merec")
STATE = STATE_DIR / "state.json"
LOCKS = (Path("dvc.lock"), Path("models/dvc.lock"))
TIMESTAMP = ".snakemake_timestamp"  # Snakemake's modification-time carrier inside directory outputs
# The order data flows in: a stage's outputs must end up newer than those of the stages before it.
PIPELINE = (
    "magnet_train", "synth", "ingest", "face", "interpolate", "magnify", "features", "au_graph", "train",
    "train_all", "evaluate", "strips", "synth_lv", "ingest_lv", "spot_features", "spot_score", "spot_train", "spot_evaluate",
    "spot_clips", "face_spotted", "interpolate_spotted", "magnify_spotted", "features_spotted", "au_graph_spotted",
    "train_spotted", "spot_strs",
)  # fmt: skip


def pipeline_rank(stage: str) -> tuple[int, str]:
    """Sort key of a DVC stage name (``face@synth-0``, ``models/dvc.yaml:magnet_train``) in data-flow order."""
    base = stage.rsplit(":", 1)[-1].split("@", 1)[0]
    return (PIPELINE.index(base) if base in PIPELINE else len(PIPELINE), stage)


def write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` unless it already holds exactly that (keeping its modification time)."""
    if path.is_file() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def params_file(name: str, values: Any) -> str:
    """``.snakemake/merec/params/<name>.json`` holding ``values``: a rule's params as an input file."""
    text = json.dumps(values, indent=1, sort_keys=True, default=str) + "\n"
    return str(write_if_changed(STATE_DIR / "params" / f"{name}.json", text))


def raw_fingerprint(name: str, roots: Sequence[str | Path]) -> str:
    """``.snakemake/merec/raw/<name>.json``: a digest of every file under ``roots`` (path, size, mtime).

    A replaced, added or removed file changes it, so the ingest rule reruns; ingest then hashes
    the frames it hands on, so only the shards whose content changed run again. Hidden files and
    folders are left out; symbolic links to folders are not followed.
    """
    digest = hashlib.sha256()
    files = 0
    for root in map(Path, roots):
        if root.is_file():
            info = root.stat()
            entries = [(root.name, info.st_size, info.st_mtime_ns)]
        else:
            entries = sorted(_file_stats(str(root)))
        for relative, size, mtime in entries:
            digest.update(f"{root}/{relative}\0{size}\0{mtime}\n".encode())
        files += len(entries)
    record = {"roots": [str(r) for r in roots], "files": files, "digest": digest.hexdigest()}
    return str(write_if_changed(STATE_DIR / "raw" / f"{name}.json", json.dumps(record, indent=1) + "\n"))


def _file_stats(root: str) -> list[tuple[str, int, int]]:
    """(path relative to ``root``, size, mtime in ns) of every file under it, in no particular order.

    ``os.scandir`` with plain strings: a long-video release holds about a million frame files,
    and pathlib objects over ``os.walk`` made listing them several times slower.
    """
    found: list[tuple[str, int, int]] = []
    folders = [("", root)]
    while folders:
        prefix, folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    if not entry.is_symlink():
                        folders.append((f"{prefix}{entry.name}/", entry.path))
                    continue
                info = entry.stat()
                found.append((prefix + entry.name, info.st_size, info.st_mtime_ns))
    return found


# ------------------------------------------------------------------------------------------ DVC -> Snakemake


def _lock_outs(locks: Sequence[Path]) -> dict[str, list[Path]]:
    """DVC stage name -> its output paths (relative to the project root), in pipeline order."""
    stages: dict[str, list[Path]] = {}
    for lock in locks:
        if not lock.is_file():
            continue
        data = yaml.safe_load(lock.read_text()) or {}
        base = lock.parent
        prefix = "" if lock.parent == Path(".") else f"{lock.parent / 'dvc.yaml'}:"
        for name, stage in (data.get("stages") or {}).items():
            wdir = base / Path(str(stage.get("wdir", "."))) if "wdir" in stage else base
            outs = [Path(os.path.normpath(wdir / out["path"])) for out in stage.get("outs", [])]
            stages[prefix + name] = outs
    return stages


def _signature(locks: Sequence[Path], stages: Mapping[str, list[Path]]) -> dict[str, Any]:
    """What must stay the same for Snakemake's view to need no new check: the locks and DVC's outputs."""
    lock_digests = {str(lock): hashlib.sha256(lock.read_bytes()).hexdigest() for lock in locks if lock.is_file()}
    mtimes = {}
    for outs in stages.values():
        for out in outs:
            mtimes[str(out)] = _mtime(out)
    return {"locks": lock_digests, "outs": mtimes}


def _read_state() -> dict[str, Any]:
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return {}


def _write_state(signature: Mapping[str, Any]) -> None:
    write_if_changed(STATE, json.dumps(signature, indent=1, sort_keys=True) + "\n")


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )


def dvc_status(expected: Iterable[str]) -> set[str] | None:
    """Names of the DVC stages that are not up to date (None when DVC cannot tell, e.g. when it
    does not see the pipeline: a copy inside a git-ignored folder)."""
    listed = _dvc("stage", "list", "--all", "--name-only")
    if listed.returncode != 0 or not set(expected) <= set(listed.stdout.split()):
        return None
    result = _dvc("status", "--json", "--quiet")
    if result.returncode != 0:
        return None
    try:
        return set(json.loads(result.stdout or "{}"))
    except ValueError:
        return None


def sync_from_dvc(log: Any = print) -> list[str]:
    """Give the outputs of the DVC stages that are up to date fresh modification times, in order.

    Runs ``dvc status`` only when ``dvc.lock`` or a DVC output changed since the last look; returns
    the stages whose outputs it touched.
    """
    stages = _lock_outs(LOCKS)
    if not stages:
        return []
    signature = _signature(LOCKS, stages)
    if _read_state() == signature:
        return []
    changed = dvc_status(stages)
    if changed is None:
        log("merec: DVC cannot tell which stages are up to date here; Snakemake judges by modification times")
        _write_state(signature)
        return []
    clean = [name for name in stages if name not in changed and all(out.exists() for out in stages[name])]
    _touch_in_order(stages, clean)
    if clean:
        log(f"merec: {len(clean)} stage(s) up to date in dvc.lock; Snakemake takes their outputs as they are")
    _write_state(_signature(LOCKS, stages))
    return clean


def _touch_in_order(stages: Mapping[str, list[Path]], names: Iterable[str]) -> None:
    """Newer modification times for the outputs of ``names``, later stages (lock order) newer still."""
    wanted = set(names)
    now = time.time_ns()
    for step, name in enumerate(sorted((n for n in stages if n in wanted), key=pipeline_rank), start=1):
        stamp = now + step * 1_000_000  # 1 ms apart: later stages are newer than the ones before
        for out in stages[name]:
            if out.exists():
                _touch(out, stamp)


def _touch(path: Path, stamp_ns: int) -> None:
    """``path`` (a file, or a folder with everything in it) at modification time ``stamp_ns``.

    Files inside a folder count too: a DVC output folder may hold files that Snakemake rules name
    (ingest's clip lists), and Snakemake reads a folder output's time from its marker file.
    """
    if path.is_dir():
        (path / TIMESTAMP).touch()
        for folder, _, names in os.walk(path, topdown=False):
            for name in names:
                os.utime(Path(folder) / name, ns=(stamp_ns, stamp_ns))
            os.utime(folder, ns=(stamp_ns, stamp_ns))
    else:
        os.utime(path, ns=(stamp_ns, stamp_ns))


# ------------------------------------------------------------------------------------------ Snakemake -> DVC


def _mtime(out: Path) -> int | None:
    """Modification time of an output as Snakemake reads it (a folder's: its marker file, if any)."""
    marker = out / TIMESTAMP
    path = marker if marker.exists() else out
    return path.stat().st_mtime_ns if path.exists() else None


def _mtimes(stages: Mapping[str, list[Path]], names: Iterable[str]) -> dict[str, list[int | None]]:
    return {name: [_mtime(out) for out in stages.get(name, [])] for name in names}


def commit_to_dvc(stages: Iterable[str], log: Any = print, ran: Iterable[str] | None = None) -> bool:
    """Record ``stages`` as up to date in ``dvc.lock`` (``dvc commit``); True on success.

    Afterwards the outputs of the stages that ran (``ran``; default: all of ``stages``) and of any
    whose files ``dvc commit`` rewrote get fresh modification times in pipeline order. The others
    keep theirs: stamping a stage that did not run could make it newer than a later stage this run
    did not cover (au_graph newer than the LOSO folds after a run of train_all alone).
    """
    names = sorted(set(stages))
    if not names or not any(lock.is_file() or lock.with_name("dvc.yaml").is_file() for lock in LOCKS):
        return True
    before = _mtimes(_lock_outs(LOCKS), names)
    result = subprocess.run(
        [sys.executable, __file__, "commit", *names],
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )
    if result.returncode != 0:
        log(
            "merec: could not record the finished stages in dvc.lock (`dvc commit` failed: "
            f"{(result.stderr or result.stdout).strip()[-500:]}); `dvc repro` will recompute them"
        )
        return False
    log(f"merec: recorded {len(names)} stage(s) in dvc.lock")
    stages = _lock_outs(LOCKS)
    after = _mtimes(stages, names)
    rewritten = {name for name in names if before.get(name) != after[name]}  # `dvc commit` may touch files
    _touch_in_order(stages, set(names if ran is None else ran) & set(names) | rewritten)
    _write_state(_signature(LOCKS, stages))
    return True


def commit_stages(names: Sequence[str]) -> None:
    """``dvc commit --force NAMES`` with the project read once and each ``dvc.lock`` written once."""
    try:
        from dvc.repo import Repo

        repo = Repo()
        if not (hasattr(repo, "lock") and hasattr(type(repo), "index")):
            raise AttributeError("Repo.lock or Repo.index")
    except (ImportError, AttributeError):  # pragma: no cover - a DVC release without them: its command line
        result = _dvc("commit", "--force", *names)
        if result.returncode != 0:
            raise SystemExit((result.stderr or result.stdout).strip()[-2000:]) from None
        return
    with repo, repo.lock:
        wanted = set(names)
        stages = [stage for stage in repo.index.stages if stage.addressing in wanted]
        unknown = wanted - {stage.addressing for stage in stages}
        if unknown:
            raise SystemExit(f"no such DVC stage: {', '.join(sorted(unknown))}")
        by_file: dict[str, tuple[Any, list[Any]]] = {}
        for stage in stages:
            stage.save()
            stage.commit()
            by_file.setdefault(stage.dvcfile.path, (stage.dvcfile, []))[1].append(stage)
        for dvcfile, group in by_file.values():
            dvcfile.dump_stages(group, update_pipeline=False)


if __name__ == "__main__":  # python workflow/rules/state.py commit STAGE...: run by commit_to_dvc
    if len(sys.argv) < 3 or sys.argv[1] != "commit":
        raise SystemExit("usage: python workflow/rules/state.py commit STAGE...")
    commit_stages(sys.argv[2:])
