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


def environment(workdir: Path) -> dict[str, str]:
    """Environment for Snakemake/DVC in a working copy: this interpreter's ``python`` first on PATH,
    the copy's ``merec`` package importable, no progress bars, no DVC analytics."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return dict(os.environ, PATH=path, PYTHONPATH=str(workdir), MEREC_NO_PROGRESS="1", DVC_NO_ANALYTICS="1")
