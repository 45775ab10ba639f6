"""Helpers shared by the tests: the project root, tiny configurations, dataset and image builders,
and running the workflow in a temporary copy of the project. Fixtures live in ``tests/conftest.py``."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
