"""Sample, subject and fold ids: plain names that can name folders and files."""

from __future__ import annotations

import re

from merec.errors import MerecError

_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
#: Not a fold: the name of the run fitted on every subject (train_all, the recogniser a bundle ships).
ALL_SUBJECTS = "all-subjects"


def is_safe_id(value: str) -> bool:
    """True for a non-empty name of letters, digits, ``_ . -`` that starts with a letter/digit/_."""
    return bool(_SAFE_ID.fullmatch(value))


def check_name(name: str) -> str:
    """Validate a dataset name from params (it becomes part of ids and file names)."""
    if not isinstance(name, str) or not is_safe_id(name):
        raise MerecError(
            f"dataset name {name!r} is not usable; use letters, digits, '_', '.' or '-' only "
            "(it names folders and files)"
        )
    return name


def fold_id(subject: str) -> str:
    """File-system-safe fold id of a qualified subject: ``samm/006`` -> ``samm-006``."""
    fold = str(subject).replace("/", "-")
    if not is_safe_id(fold):
        raise MerecError(
            f"subject {subject!r} cannot name a fold; subject ids may use letters, digits, "
            "'_', '.', '-' and one '/' after the dataset name"
        )
    return fold


def sample_id(subject: str, clip: str) -> str:
    """Sample id convention: ``<fold>-<clip>``, e.g. ``samm-006-006_1_2``."""
    return f"{fold_id(subject)}-{clip}"
