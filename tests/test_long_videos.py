"""SAMM Long Videos as released: the workbook's layout and quirks, frame folders, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from openpyxl import Workbook

from merec.datasets.long_videos import read_casme2_lv, read_casme3_lv, read_samm_lv
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
    assert sorted(data.corrections["field"]) == ["apex", "offset", "offset"]
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
    assert "3 row(s) cannot be read" in message and "row 11 (006_1_1): 'Mega' is not a type" in message, message
    assert "row 12 (006_1_2): offset 500 is past the last frame (400)" in message
    assert "row 13 (008_2_1): no frame folder" in message
    skipped = read_samm_lv(tmp_path, on_error="skip").skipped
    assert list(skipped["row"]) == [11, 12, 13]


def write_casme2(root: Path, rows: list[list]) -> None:
    """A CAS(ME)^2 copy: code_final.xlsx without header rows, its two naming sheets, rawpic frames."""
    book = Workbook()
    sheet = book.active
    sheet.title = "CASFEcode_final"
    for row in rows:
        sheet.append(row)
    book.create_sheet("naming rule1").append([15, "s15", 1])
    book["naming rule1"].append([16, "s16", 2])
    rule2 = book.create_sheet("naming rule2")
    rule2.append(["0401", "anger1"])
    rule2.append(["0502", "happy1"])
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / "code_final.xlsx")
    image = np.zeros((8, 8, 3), np.uint8)
    for folder, count in (("s15/15_0401girlcrashing", 120), ("s16/16_0502funnyerrors", 20)):
        (root / "rawpic" / folder).mkdir(parents=True)
        for n in range(1, count + 1):
            cv2.imwrite(str(root / "rawpic" / folder / f"img{n:03d}.jpg"), image)


def test_casme2_reads_its_headerless_workbook_through_the_naming_sheets(tmp_path: Path) -> None:
    write_casme2(
        tmp_path,
        [
            [1, "anger1_1", 10, 20, 30, "4+5", "negative", "micro-expression", "angry"],
            [1, "anger1_2", 50, 60, 0, "12", "positive", "macro-expression", ""],
            [2, "happy1_1", 5, 8, 12, "12", "positive", "micro-expression", ""],
        ],
    )
    data = read_casme2_lv(tmp_path)
    intervals = data.intervals
    assert list(intervals["video"]) == ["15_0401", "15_0401", "16_0502"]
    assert list(intervals["subject"]) == ["casme2_lv/s15", "casme2_lv/s15", "casme2_lv/s16"]
    assert list(intervals["type"]) == ["micro", "macro", "micro"] and intervals.iloc[0]["emotion"] == "negative"
    assert intervals.iloc[1][["onset", "offset"]].tolist() == [50, 60]  # offset 0 -> the apex, listed
    assert data.corrections[["row", "field", "new"]].values.tolist() == [[2, "offset", 60]]
    videos = data.videos.set_index("video")
    assert (
        videos.loc["15_0401", "folder"].endswith("rawpic/s15/15_0401girlcrashing")
        and videos.loc["16_0502", "fps"] == 30
    )


def test_casme2_rows_without_a_name_or_folder_are_named(tmp_path: Path) -> None:
    write_casme2(tmp_path, [[3, "anger1_1", 10, 20, 30, "4", "negative", "micro-expression", ""],
                            [1, "disgust2_1", 10, 20, 30, "4", "negative", "micro-expression", ""]])  # fmt: skip
    with pytest.raises(MerecError) as info:
        read_casme2_lv(tmp_path)
    assert "row 1 (3 anger1_1): subject '3' is not in sheet 'naming rule1'" in str(info.value)
    assert "row 2 (1 disgust2_1): expression 'disgust2_1' has no code" in str(info.value)


def test_a_casme2_release_ingests_for_spotting_with_its_labels_and_shard_lists(tmp_path: Path) -> None:
    from merec.datasets.clips import read_clip_list
    from merec.datasets.long_ingest import read_intervals, read_videos, run
    from merec.datasets.settings import IngestParams

    write_casme2(tmp_path / "raw", [
        [1, "anger1_1", 10, 20, 30, "4+5", "negative", "micro-expression", ""],
        [2, "happy1_1", 5, 8, 12, "12", "positive", "micro-expression", ""],
        [2, "happy1_2", 1, 8, 15, "6+12", "others", "macro-expression", ""],
    ])  # fmt: skip
    out = tmp_path / "interim" / "videos.csv"
    assert run("casme2_lv", {"format": "casme2_lv", "root": str(tmp_path / "raw")}, out,
               IngestParams.from_mapping({"shards": [0]})) == 2  # fmt: skip
    videos, intervals = read_videos(out), read_intervals(out)
    assert list(videos["fold"]) == ["s15", "s16"] and set(videos["fps"]) == {30.0}
    assert list(intervals["label"]) == ["negative", "positive", ""]  # CAS(ME)^2's own classes; macro: none
    (listed,) = [read_clip_list(out.with_name("videos") / "shard-0.json")]
    assert sorted(len(clip.frames) for clip in listed.clips) == [20, 120]


def write_casme3(root: Path, micro: list[list], macro: list[list] | None, frames: dict[str, int]) -> None:
    """CAS(ME)^3 part A as released: the ME workbook (sheet ``label``, every cell text), the MaE workbook,
    frames ``part_A/spNO.1/a/color/1.jpg`` (unpadded)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "label"
    sheet.append(["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"])
    for row in micro:
        sheet.append([str(cell) for cell in row])
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    if macro is not None:
        book = Workbook()
        book.active.append(["sub", "seq", "onset", "apex", "offset", "emotion"])
        for row in macro:
            book.active.append(row)
        book.save(root / "cas(me)3_part_A_MaE_label_JpgIndex_v2_emotion.xlsx")
    image = np.zeros((8, 8, 3), np.uint8)
    for folder, count in frames.items():
        (root / "part_A" / folder / "color").mkdir(parents=True)
        for n in range(1, count + 1):
            cv2.imwrite(str(root / "part_A" / folder / "color" / f"{n}.jpg"), image)


def test_casme3_part_a_reads_each_task_as_a_video_with_both_workbooks_and_the_errata(tmp_path: Path) -> None:
    write_casme3(
        tmp_path,
        [
            ["spNO.1", "a", 10, 14, 20, "4+T18", "1", "disgust"],
            ["spNO.214", "c", 5, 10, 3460, "12", "2", "happy"],  # the release's typo: offset 34 (an erratum)
            ["spNO.2", "e", 138, 140, 150, "4", "1", "fear"],  # occluded: the release removes it
        ],
        [["spNO.1", "a", 30, 40, 70, "happy"], [214, "c", 50, 60, 90, "surprise"]],
        {"spNO.1/a": 80, "spNO.214/c": 100, "spNO.2/e": 160},
    )
    data = read_casme3_lv(tmp_path)
    intervals = data.intervals
    assert list(intervals["video"]) == ["spNO.1_a", "spNO.214_c", "spNO.1_a", "spNO.214_c"]
    assert list(intervals["type"]) == ["micro", "micro", "macro", "macro"]
    assert list(intervals["row"]) == [2, 3, 100_002, 100_003]  # macro rows numbered apart from the ME rows
    assert intervals.iloc[0]["aus"] == "4+18" and intervals.iloc[1]["offset"] == 34
    assert list(intervals["subject"].unique()) == ["casme3_lv/spNO.1", "casme3_lv/spNO.214"]
    assert data.corrections[["row", "field", "new"]].values.tolist() == [[3, "Offset", "34"]]
    assert data.skipped["reason"].str.contains("removed by erratum").tolist() == [True]
    videos = data.videos.set_index("video")
    assert videos.loc["spNO.1_a", "folder"].endswith("part_A/spNO.1/a/color") and videos.loc["spNO.1_a", "last"] == 80
    assert set(videos["fps"]) == {30.0}
    with pytest.raises(MerecError, match="offset 3460 is past the last frame"):  # as released, without the errata
        read_casme3_lv(tmp_path, errata=False)


def test_casme3_part_a_without_its_workbook_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(MerecError, match=r"no cas\(me\)3_part_A_ME_label_JpgIndex_v2.xlsx; put the CAS\(ME\)\^3"):
        read_casme3_lv(tmp_path)


def test_a_casme3_release_ingests_for_spotting_with_its_own_emotions_as_labels(tmp_path: Path) -> None:
    from merec.datasets.long_ingest import label_classes_of, read_intervals, run
    from merec.datasets.settings import IngestParams

    write_casme3(tmp_path / "raw", [["spNO.1", "a", 10, 14, 20, "4", "1", "disgust"],
                                    ["spNO.2", "b", 5, 8, 12, "12", "2", "happy"],
                                    ["spNO.2", "b", 30, 33, 36, "1", "3", "others"]], None,
                 {"spNO.1/a": 40, "spNO.2/b": 40})  # fmt: skip
    out = tmp_path / "interim" / "videos.csv"
    assert run("casme3_lv", {"format": "casme3_lv", "root": str(tmp_path / "raw")}, out,
               IngestParams.from_mapping({"shards": [0]})) == 2  # fmt: skip
    assert list(read_intervals(out)["label"]) == ["negative", "positive", ""]
    emotions = ["anger", "disgust", "fear", "happy", "sad", "surprise", "others"]  # the short-clip reader's classes
    assert label_classes_of("casme3_lv", "emotion") == emotions
