"""Working copies of the project: its files as a commit holds them, and the environment to run its
workflow in (used by the ablation and scale scripts and by the workflow tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def project_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files: the project as a commit would hold it.

    ``results/`` is left out: it holds the checkout's own git-tracked metrics, never part of a copy.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    listed = [name for name in listed if not name.startswith("results/")]
    return [name for name in listed if (root / name).is_file() or (root / name).is_symlink()]


RUN_STATE = ("dvc.lock", "models/dvc.lock")  # what the checkout's own runs record (Snakemake's too)


def project_content(root: Path, name: str) -> bytes | None:
    """A project file's bytes for a working copy: the working tree's, but the lock files as the
    commit holds them (a run in the checkout rewrites them); None for a lock file the commit lacks."""
    if name not in RUN_STATE:
        return (root / name).read_bytes()
    shown = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=root, capture_output=True)
    return shown.stdout if shown.returncode == 0 else None


def copy_project(root: Path, target: Path) -> Path:
    """The project's files (:func:`project_files`, :func:`project_content`) written under ``target``."""
    for name in project_files(root):
        content = project_content(root, name)
        if content is None:
            continue
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return target


def environment(workdir: Path) -> dict[str, str]:
    """Environment for Snakemake/DVC in a working copy: this interpreter's ``python`` first on PATH,
    the copy's ``merec`` package importable, no progress bars, no DVC analytics."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return dict(os.environ, PATH=path, PYTHONPATH=str(workdir), MEREC_NO_PROGRESS="1", DVC_NO_ANALYTICS="1")
