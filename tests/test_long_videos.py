"""SAMM Long Videos as released: the workbook's layout and quirks, frame folders, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from openpyxl import Workbook

from merec.datasets.long_videos import read_samm_lv
from merec.errors import MerecError

HEADER = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type", "Action Units",
          "Notes"]  # fmt: skip


def write_release(root: Path, rows: list[list], version: int = 2, frames: dict[str, int] | None = None) -> None:
    """A SAMM-LV copy: the workbook (title rows, header on Excel row 10) and 4-digit frame files."""
    book = Workbook()
    sheet = book.active
    sheet.title = "FACS_Movement_Only"
    sheet.append(["SAMM Long Videos"])
    for _ in range(8):
        sheet.append([])
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / f"SAMM_LongVideos_V{version}_Release.xlsx")
    image = np.zeros((8, 8, 3), np.uint8)
    for video, count in (frames or {"006_1": 400, "007_3": 300}).items():
        folder = root / "SAMM_longvideos" / video
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, count + 1):
            cv2.imwrite(str(folder / f"{video}_{n:04d}.jpg"), image)


ROWS = [
    ["006", "006_1_1", 1, 101, 151, 180, 80, "Macro", "R12+25", ""],
    ["006", "006_1_2", 1, 250, 262.6, 270.4, 21, "Micro - 1/2", "4", ""],
    ["007", "007_3_1", 2, 20, -1, 60, 41, "Micro - 1/2", "R14A or 17A", ""],
    ["007", "007_3_2", 2, 0, 100, 200, 201, "Macro", "12", "long"],
    ["007", "007_3_3", 2, 210, 230, 0, 0, "Macro", "6+12", ""],
]


def test_the_release_reads_with_its_quirks_handled_and_listed(tmp_path: Path) -> None:
    write_release(tmp_path, ROWS)
    data = read_samm_lv(tmp_path)
    intervals = data.intervals
    assert list(intervals["video"]) == ["006_1", "006_1", "007_3", "007_3"]
    assert list(intervals["subject"]) == ["samm_lv/006", "samm_lv/006", "samm_lv/007", "samm_lv/007"]
    assert list(intervals["type"]) == ["macro", "micro", "micro", "macro"]
    # fractional frames truncated; apex -1 not annotated; offset 0 takes the apex
    assert intervals.iloc[1][["onset", "apex", "offset"]].tolist() == [250, 262, 270]
    assert intervals.iloc[2]["apex"] is None or np.isnan(intervals.iloc[2]["apex"])
    assert intervals.iloc[3][["onset", "offset"]].tolist() == [210, 230]
    assert intervals.iloc[2]["aus"] != ""  # "R14A or 17A": both AUs
    assert sorted(data.corrections["field"]) == ["Apex", "Offset", "Offset"]
    assert data.corrections.iloc[0]["row"] == 12  # Excel rows: header on 10, first interval on 11
    (skip,) = data.skipped.itertuples(index=False)
    assert skip.row == 14 and skip.video == "007_3" and "onset 0" in skip.reason  # a long macro row with onset 0
    videos = data.videos.set_index("video")
    assert (
        videos.loc["006_1", "frames"] == 400
        and videos.loc["007_3", "last"] == 300
        and videos.loc["006_1", "fps"] == 200
    )


def test_the_newest_release_is_read(tmp_path: Path) -> None:
    write_release(tmp_path, ROWS[:1], version=1)
    write_release(tmp_path, ROWS[:2], version=3)
    assert len(read_samm_lv(tmp_path).intervals) == 2


def test_bad_rows_and_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(MerecError, match="no SAMM_LongVideos_V<k>_Release.xlsx"):
        read_samm_lv(tmp_path)
    bad = [
        ["006", "006_1_1", 1, 101, 151, 180, 80, "Mega", "", ""],
        ["006", "006_1_2", 1, 300, 350, 500, 201, "Macro", "", ""],
        ["008", "008_2_1", 1, 10, 20, 30, 21, "Macro", "", ""],
    ]
    write_release(tmp_path, bad)
    with pytest.raises(MerecError) as info:
        read_samm_lv(tmp_path)
    message = str(info.value)
    assert "3 row(s) cannot be read" in message and "row 11 (006_1_1): 'Mega' is not a type" in message
    assert "row 12 (006_1_2): offset 500 is past the last frame (400)" in message
    assert "row 13 (008_2_1): no frame folder" in message
    skipped = read_samm_lv(tmp_path, on_error="skip").skipped
    assert list(skipped["row"]) == [11, 12, 13]
