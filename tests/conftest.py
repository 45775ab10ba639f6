"""Shared fixtures: a tiny synthetic dataset, generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MEREC_NO_PROGRESS", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
REPO = Path(__file__).resolve().parents[1]

TINY_SYNTH = {
    "seed": 3,
    "subjects": 3,
    "samples_per_class": 1,
    "frame_size": 160,
    "clip_frames": 32,
}


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-subject, 9-clip synthetic dataset in SAMM format."""
    from merec.datasets.synth import SynthParams, generate

    root = tmp_path_factory.mktemp("synth") / "synth"
    generate(root, SynthParams(**TINY_SYNTH))
    return root
