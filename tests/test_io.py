"""File I/O: frame images that are missing, empty, corrupt or truncated; npz archives without pickles;
atomic writers that never leave anything half-written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from merec.checkpoints import save_state_dict
from merec.io import (
    MerecError,
    atomic_dir,
    atomic_path,
    load_npz,
    read_image,
    save_npz,
    write_csv,
    write_json,
)
from merec.runs import fold_runs
from tests.helpers import REPO
from tests.helpers.images import encoded
from tests.helpers.models import stst
from tests.helpers.pickles import Exploit

# ---------------------------------------------------------------------------------------------
# frame files


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp"])
def test_truncated_and_empty_frames_name_the_file(tmp_path: Path, suffix: str) -> None:
    whole = encoded(suffix)
    for fraction in (0.3, 0.9):
        frame = tmp_path / f"img{int(fraction * 10)}{suffix}"
        frame.write_bytes(whole[: int(len(whole) * fraction)])
        with pytest.raises(MerecError, match=r"(corrupt|truncated).*restore it from the original data") as info:
            read_image(frame)
        assert str(frame) in str(info.value)
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(MerecError, match=r"empty \(0 bytes\)"):
        read_image(empty)
    with pytest.raises(MerecError, match="frame file is missing"):
        read_image(tmp_path / f"absent{suffix}")
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(MerecError, match="corrupt or not an image"):
        read_image(junk)


def test_truncated_jpeg_is_caught_where_opencv_decodes_it_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older OpenCV builds return a partly grey image for a truncated JPEG: the end marker decides."""
    whole = encoded(".jpg")
    frame = tmp_path / "img1.jpg"
    frame.write_bytes(whole[: len(whole) * 2 // 3])
    monkeypatch.setattr(cv2, "imdecode", lambda buffer, flags: np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(MerecError, match="truncated"):
        read_image(frame)


def test_complete_jpeg_with_padding_or_trailing_data_is_read(tmp_path: Path) -> None:
    whole = encoded(".jpg")
    reference = cv2.imdecode(np.frombuffer(whole, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    for tail in (b"\x00" * 7, b"\xff\xff", b"trailing metadata written after the image"):
        frame = tmp_path / "img1.jpg"
        frame.write_bytes(whole + tail)
        assert np.array_equal(read_image(frame), reference)
    assert read_image(frame, grayscale=True).shape == (64, 64)


def test_pickled_objects_in_npz_archives_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    np.savez(tmp_path / "evil.npz", frames=np.array([Exploit(marker)], dtype=object))
    with pytest.raises(MerecError, match="cannot read this archive.*delete it and rerun"):
        load_npz(tmp_path / "evil.npz")
    assert not marker.exists()
    save_npz(tmp_path / "good.npz", x=np.arange(5000.0))
    whole = bytearray((tmp_path / "good.npz").read_bytes())
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    whole[len(whole) // 2 : len(whole) // 2 + 64] = bytes(64)
    (tmp_path / "flipped.npz").write_bytes(whole)
    for name in ("cut.npz", "flipped.npz"):
        with pytest.raises(MerecError, match=f"{name}: cannot read this archive"):
            load_npz(tmp_path / name)
    with pytest.raises(MerecError, match="absent.npz: file is missing; rerun the stage"):
        load_npz(tmp_path / "absent.npz")


# ---------------------------------------------------------------------------------------------
# atomic writers: never half-written, nothing left behind


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Boom(Exception):
    """Raised in the middle of a write."""


class FailsWhenWritten:
    """A cell whose text cannot be made: the CSV writer fails after writing the rows before it."""

    def __str__(self) -> str:
        raise Boom


@pytest.mark.parametrize(
    "write",
    [
        lambda p: save_npz(p, a=np.zeros(1000), b=np.array([lambda: 0], dtype=object)),  # fails after a
        lambda p: write_json(p, {"a": 1, "b": object()}),
        lambda p: write_csv(p, pd.DataFrame({"a": [1] * 5000 + [FailsWhenWritten()]})),
    ],
    ids=["npz", "json", "csv"],
)
def test_a_failing_writer_keeps_the_old_file_and_leaves_nothing(tmp_path: Path, write) -> None:
    target = tmp_path / "out.dat"
    target.write_text("previous, complete version")
    with pytest.raises((TypeError, ValueError, Boom)):
        write(target)
    assert target.read_text() == "previous, complete version"
    assert siblings(tmp_path) == ["out.dat"]


def test_atomic_path_and_dir_on_exceptions(tmp_path: Path) -> None:
    with pytest.raises(Boom), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("half")
        raise Boom
    assert siblings(tmp_path) == []
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "old.npz").write_text("complete")
    with pytest.raises(Boom), atomic_dir(tmp_path / "stage") as tmp:
        (tmp / "a.npz").write_text("half")
        raise Boom
    assert siblings(tmp_path) == ["stage"] and siblings(tmp_path / "stage") == ["old.npz"]
    with atomic_dir(tmp_path / "stage") as tmp:
        (tmp / "b.npz").write_text("new")
    assert siblings(tmp_path) == ["stage"] and siblings(tmp_path / "stage") == ["b.npz"]


WRITER = """
import sys, time
from pathlib import Path
from merec.io import atomic_dir, save_npz
import numpy as np
with atomic_dir(sys.argv[1]) as tmp:
    save_npz(Path(tmp) / "first.npz", x=np.zeros(3))
    (Path(tmp) / "predictions.csv").write_text("sample,predicted\\n")
    print("written", flush=True)
    time.sleep(60)
"""


def test_a_killed_writer_leaves_nothing_that_looks_done_and_the_next_write_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "folds" / "d-1"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stdout.readline().strip() == "written"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not target.exists()
    leftovers = siblings(tmp_path / "folds")
    assert len(leftovers) == 1 and leftovers[0].startswith(".d-1.") and leftovers[0].endswith(".part")
    assert [p.name for p in (tmp_path / "folds").glob("*/predictions.csv")] == ["predictions.csv"]  # a trap
    with pytest.raises(MerecError, match="no predictions for folds d-1"):  # hidden: never read as a run
        fold_runs(tmp_path / "folds", ["d-1"])
    with atomic_dir(target) as tmp:
        (tmp / "predictions.csv").write_text("complete")
    assert siblings(tmp_path / "folds") == ["d-1"]
    with atomic_path(tmp_path / "x.csv") as tmp:
        tmp.write_text("a")
    (tmp_path / ".x.csv.abcd1234.part").write_text("killed")
    (tmp_path / ".x.csv.keep").write_text("not ours")
    with atomic_path(tmp_path / "x.csv") as tmp:
        tmp.write_text("b")
    assert ".x.csv.abcd1234.part" not in siblings(tmp_path) and ".x.csv.keep" in siblings(tmp_path)


def test_written_files_have_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    write_json(tmp_path / "a.json", {"a": 1})
    with atomic_dir(tmp_path / "stage") as tmp:
        save_npz(tmp / "s.npz", x=np.zeros(1))
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "stage").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "stage" / "s.npz").stat().st_mode & 0o777 == 0o666 & ~mask


def test_identical_content_gives_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts do not embed write times or temporary names, so DVC hashes survive a rerun."""
    arrays = {"frames": np.arange(60, dtype=np.uint8).reshape(3, 4, 5), "names": np.array(["a", "bc"])}
    save_npz(tmp_path / "a.npz", **arrays)
    save_state_dict(stst(), tmp_path / "a.pt")
    later = time.time() + 86_400
    monkeypatch.setattr(time, "time", lambda: later)
    torch.manual_seed(0)
    model = stst()
    torch.manual_seed(0)
    save_state_dict(stst(), tmp_path / "b.pt")
    save_state_dict(model, tmp_path / "c.pt")
    save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "b.pt").read_bytes() == (tmp_path / "c.pt").read_bytes()
    loaded = load_npz(tmp_path / "b.npz")
    assert all(np.array_equal(loaded[key], value) and loaded[key].dtype == value.dtype for key, value in arrays.items())
    with pytest.raises(ValueError, match="allow_pickle"):
        save_npz(tmp_path / "c.npz", x=np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "c.npz").exists()
