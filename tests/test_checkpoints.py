"""Checkpoints: tensors only (weights_only), a complete key and shape check, pickled code never run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from merec.checkpoints import load_state_dict, read_state_dict, save_state_dict
from merec.io import (
    MerecError,
)

# ---------------------------------------------------------------------------------------------
# checkpoints: tensors only, complete key/shape check
from tests.helpers.models import stst
from tests.helpers.pickles import Exploit


def test_checkpoint_of_another_architecture_lists_the_mismatches(tmp_path: Path) -> None:
    save_state_dict(stst((4, 5, 8)), tmp_path / "other.pt")
    with pytest.raises(MerecError) as info:
        load_state_dict(stst(), tmp_path / "other.pt")
    message = str(info.value)
    assert f"{tmp_path / 'other.pt'}: checkpoint does not match STSTNet" in message
    assert "streams.0.0.weight: file (4, 3, 3, 3) vs model (3, 3, 3, 3)" in message
    assert "Use a checkpoint of the same architecture" in message
    partial = {f"module.{k}": v for k, v in stst().state_dict().items() if "classifier" not in k}
    torch.save(partial, tmp_path / "partial.pt")  # a DDP-style prefix is stripped, the missing keys listed
    with pytest.raises(MerecError, match="2 missing keys: classifier.weight, classifier.bias"):
        load_state_dict(stst(), tmp_path / "partial.pt")


def test_truncated_empty_and_missing_checkpoints(tmp_path: Path) -> None:
    save_state_dict(stst(), tmp_path / "model.pt")
    whole = (tmp_path / "model.pt").read_bytes()
    for name, content in (("half.pt", whole[: len(whole) // 2]), ("tail.pt", whole[:-40]), ("empty.pt", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(MerecError, match="not a readable torch checkpoint") as info:
            load_state_dict(stst(), tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and "re-create or re-copy it" in str(info.value)
    with pytest.raises(MerecError, match="checkpoint not found"):
        read_state_dict(tmp_path / "absent.pt")


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    torch.save({"weight": torch.zeros(1), "payload": Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(MerecError, match="not a readable torch checkpoint"):
        read_state_dict(tmp_path / "evil.pt")
    torch.save(stst(), tmp_path / "module.pt")  # a whole pickled module
    with pytest.raises(MerecError):
        read_state_dict(tmp_path / "module.pt")
    assert not marker.exists()
