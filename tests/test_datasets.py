"""Dataset adapters on fixtures that copy the official layouts (see tests/helpers/datasets.py)."""

from __future__ import annotations

import logging
import re
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from merec.datasets import (
    FORMATS,
    SAMPLE_COLUMNS,
    clip_frame_paths,
    fold_id,
    label_classes,
    list_frames,
    load_samples,
)
from merec.errors import MerecError
from tests.helpers.datasets import (
    CASME2_ROWS,
    CASME3_ROWS,
    SAMM_FILE,
    SAMM_ROWS,
    error_of,
    make_casme2,
    make_casme3,
    make_megc,
    make_samm,
    make_smic,
    rows_of,
    with_row,
    write_moving_clip,
)

SAFE = re.compile(r"[A-Za-z0-9_.-]+")


def samm_spec(root: Path, **extra: object) -> dict[str, object]:
    return {"format": "samm", "root": str(root), **extra}


# ---------------------------------------------------------------------------------------------
# SAMM (also the synthetic dataset's format)


def test_samm_table_matches_the_schema(tmp_path: Path) -> None:
    root = make_samm(tmp_path / "samm")
    result = load_samples("samm", samm_spec(root))
    table = result.samples
    assert list(table.columns) == SAMPLE_COLUMNS
    assert list(table["sample"]) == [
        "samm-006-006_1_2", "samm-006-006_1_3", "samm-007-007_3_1", "samm-007-007_6_1",
    ]  # fmt: skip
    first = table.iloc[0]
    assert first["dataset"] == "samm"
    assert first["subject"] == "samm/006"
    assert first["fold"] == "samm-006"
    assert first["frames_dir"] == str(root / "006" / "006_1_2")
    assert (first["onset"], first["apex"], first["offset"]) == (10, 12, 14)
    assert (first["emotion"], first["label"]) == ("Happiness", "positive")
    assert (first["aus"], first["action_units"]) == ("12+14", "R12+L14")
    assert list(table["label"]) == ["positive", "negative", "surprise", "negative"]
    assert table.loc[3, "aus"] == "12"  # an AU cell Excel stored as the number 12
    assert table[["onset", "apex", "offset"]].dtypes.eq("int64").all()
    assert all(SAFE.fullmatch(sample) for sample in table["sample"])


def test_samm_label_exclusion_is_listed_not_an_error(tmp_path: Path) -> None:
    result = load_samples("samm", samm_spec(make_samm(tmp_path)))
    skipped = result.skipped
    assert list(skipped.columns) == ["dataset", "row", "subject", "sample", "reason"]
    assert skipped.to_dict("records") == [
        {
            "dataset": "samm",
            "row": 19,
            "subject": "samm/007",
            "sample": "samm-007-007_7_1",
            "reason": "label excluded: Other",
        }
    ]


def test_samm_emotion_label_set(tmp_path: Path) -> None:
    result = load_samples("samm", samm_spec(make_samm(tmp_path)), label_set="emotion")
    assert list(result.samples["label"]) == ["happiness", "anger", "surprise", "contempt", "other"]
    assert result.skipped.empty


def test_relative_default_root_keeps_relative_frame_paths(tmp_path: Path, monkeypatch) -> None:
    make_samm(tmp_path / "data" / "raw" / "mysamm")
    monkeypatch.chdir(tmp_path)
    table = load_samples("mysamm", {"format": "samm"}).samples
    assert table.loc[0, "frames_dir"] == "data/raw/mysamm/006/006_1_2"
    assert table.loc[0, "subject"] == "mysamm/006"
    assert table.loc[0, "sample"] == "mysamm-006-006_1_2"


def test_reads_the_synthetic_generator_output_unchanged(tiny_synth: Path) -> None:
    result = load_samples("synth", {"format": "samm", "root": str(tiny_synth)})
    table = result.samples
    assert len(table) == 9 and result.skipped.empty
    assert sorted(set(table["fold"])) == ["synth-001", "synth-002", "synth-003"]
    assert set(table["label"]) == {"negative", "positive", "surprise"}
    assert all(len(clip_frame_paths(row)) == row["offset"] - row["onset"] + 1 for _, row in table.iterrows())


def test_annotation_key_bare_name_is_looked_up_in_root(tmp_path: Path) -> None:
    root = make_samm(tmp_path)
    (root / SAMM_FILE).rename(root / "codes.xlsx")
    assert len(load_samples("samm", samm_spec(root, annotation="codes.xlsx")).samples) == 4
    assert len(load_samples("samm", samm_spec(root, annotation=str(root / "codes.xlsx"))).samples) == 4


def test_single_sample_subject_warns(tmp_path: Path, caplog) -> None:
    rows = [*SAMM_ROWS[:4], {**SAMM_ROWS[0], "subject": 9, "clip": "009_1_1"}]
    with caplog.at_level(logging.WARNING, logger="merec.datasets"):
        table = load_samples("samm", samm_spec(make_samm(tmp_path, rows))).samples
    assert "samm/009" in set(table["subject"])
    assert "single sample: samm/009" in caplog.text


# ---------------------------------------------------------------------------------------------
# dataset-level errors


def test_missing_root_says_what_to_put_where(tmp_path: Path) -> None:
    message = error_of("samm", samm_spec(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in message
    assert "SAMM_Micro_FACS_Codes_v2.xlsx and the frame folders 006/006_1_2/" in message
    assert "datasets.samm.root" in message


def test_missing_annotation_file(tmp_path: Path) -> None:
    message = error_of("casme2", {"format": "casme2", "root": str(tmp_path)})
    assert "CASME2-coding-20140508.xlsx" in message
    assert str(tmp_path) in message
    assert "datasets.casme2.annotation" in message


def test_missing_columns_lists_missing_and_found(tmp_path: Path) -> None:
    make_samm(tmp_path)
    book = pd.read_excel(tmp_path / SAMM_FILE, sheet_name="MICRO_ONLY", header=13, engine="openpyxl")
    book = book.drop(columns=["Apex Frame"])
    with pd.ExcelWriter(tmp_path / SAMM_FILE) as writer:
        book.to_excel(writer, sheet_name="MICRO_ONLY", startrow=13, index=False)
    message = error_of("samm", samm_spec(tmp_path))
    assert SAMM_FILE in message
    assert "missing column(s) Apex Frame" in message
    assert "row 14" in message
    assert "found: Subject, Filename, Inducement Code, Onset Frame, Offset Frame" in message


def test_missing_sheet_lists_sheets(tmp_path: Path) -> None:
    make_samm(tmp_path)
    pd.DataFrame({"a": [1]}).to_excel(tmp_path / SAMM_FILE, sheet_name="Other", index=False)
    message = error_of("samm", samm_spec(tmp_path))
    assert "sheet 'Other'" in message and "missing column(s) Subject" in message


def test_bad_arguments(tmp_path: Path) -> None:
    spec = samm_spec(make_samm(tmp_path))
    assert "ingest.label_set: '7class'" in error_of("samm", spec, label_set="7class")
    assert "['fail', 'skip']" in error_of("samm", spec, on_error="ignore")
    assert ", ".join(FORMATS) in error_of("samm", {**spec, "format": "samm2"})
    assert "dataset name" in error_of("../x", spec)


# ---------------------------------------------------------------------------------------------
# row-level errors: all collected, each naming the file and the Excel row


@pytest.mark.parametrize(
    ("index", "changes", "expected"),
    [
        (1, {"onset": "twenty"}, "column 'Onset Frame' 'twenty' is not a frame number"),
        (1, {"onset": 20.5, "first": 20}, "column 'Onset Frame' 20.5 is not a frame number"),
        (1, {"apex": "x"}, "column 'Apex Frame' 'x' is not a frame number"),
        (1, {"apex": 30}, "apex 30 is outside [onset 20, offset 23]"),
        (1, {"onset": 25, "first": 20}, "onset 25 is after offset 23"),
        (1, {"emotion": "Joy"}, "unknown emotion 'Joy'"),
        (1, {"frames": False}, "frame folder"),
        (1, {"missing": [21]}, "frame file(s) for apex 21 missing"),
        (1, {"aus": "12%"}, "column 'Action Units'"),
        (1, {"clip": "../../etc"}, "not a plain name"),
        (1, {"clip": "/etc"}, "not a plain name"),
    ],
)
def test_row_problem_names_file_and_row(tmp_path: Path, index: int, changes: dict, expected: str) -> None:
    root = make_samm(tmp_path, with_row(SAMM_ROWS, index, **changes))
    message = error_of("samm", samm_spec(root))
    assert f"{root / SAMM_FILE} row {15 + index}" in message
    assert expected in message
    assert "on_error='skip'" in message


def test_unknown_emotion_lists_accepted_values(tmp_path: Path) -> None:
    root = make_samm(tmp_path, with_row(SAMM_ROWS, 0, emotion="Joy"))
    message = error_of("samm", samm_spec(root))
    assert "anger, contempt, disgust, fear, happiness, other, sadness, surprise" in message


def test_all_problems_collected_in_one_error(tmp_path: Path) -> None:
    rows = with_row(with_row(SAMM_ROWS, 0, apex="x"), 2, emotion="Joy")
    message = error_of("samm", samm_spec(make_samm(tmp_path, rows)))
    assert "2 annotated clip(s) have problems" in message
    assert "row 15" in message and "row 17" in message


def test_error_list_is_capped(tmp_path: Path) -> None:
    rows = rows_of(*[(6, f"006_1_{n}", 1, "x", 3, "", "Anger") for n in range(25)])
    message = error_of("samm", samm_spec(make_samm(tmp_path, rows)))
    assert "25 annotated clip(s)" in message
    assert message.count("\n  - ") == 20
    assert "... and 5 more" in message


def test_skip_mode_lists_each_skipped_row(tmp_path: Path) -> None:
    rows = with_row(with_row(SAMM_ROWS, 0, apex="x"), 2, emotion="Joy")
    result = load_samples("samm", samm_spec(make_samm(tmp_path, rows)), on_error="skip")
    assert list(result.samples["sample"]) == ["samm-006-006_1_3", "samm-007-007_6_1"]
    reasons = dict(zip(result.skipped["row"], result.skipped["reason"], strict=True))
    assert "'Apex Frame' 'x' is not a frame number" in reasons[15]
    assert "unknown emotion 'Joy'" in reasons[17]
    assert reasons[19] == "label excluded: Other"


def test_duplicate_sample_ids(tmp_path: Path) -> None:
    rows = [*SAMM_ROWS, dict(SAMM_ROWS[1])]
    message = error_of("samm", samm_spec(make_samm(tmp_path, rows)))
    assert "sample id samm-006-006_1_3 is used by more than one row" in message
    assert "row 16" in message and "row 20" in message
    result = load_samples("samm", samm_spec(tmp_path), on_error="skip")
    assert "samm-006-006_1_3" not in set(result.samples["sample"])
    assert set(result.skipped["row"]) >= {16, 20}


def test_frame_folder_symlinked_outside_root_is_rejected(tmp_path: Path) -> None:
    root = make_samm(tmp_path / "samm")
    outside = tmp_path / "elsewhere"
    (root / "006" / "006_1_2").rename(outside)
    (root / "006" / "006_1_2").symlink_to(outside, target_is_directory=True)
    message = error_of("samm", samm_spec(root))
    assert "outside the dataset root" in message
    assert "row 15" in message


def test_frames_setting_must_stay_inside_root(tmp_path: Path) -> None:
    message = error_of("samm", samm_spec(make_samm(tmp_path), frames="../other"))
    assert "datasets.samm.frames" in message


def test_no_usable_samples_is_an_error(tmp_path: Path) -> None:
    rows = [{**SAMM_ROWS[4], "clip": f"007_7_{n}"} for n in range(2)]
    assert "no usable samples" in error_of("samm", samm_spec(make_samm(tmp_path, rows)))


# ---------------------------------------------------------------------------------------------
# CASME II


def test_casme2_official_layout(tmp_path: Path) -> None:
    root = make_casme2(tmp_path / "casme2")
    header = pd.read_excel(root / "CASME2-coding-20140508.xlsx", engine="openpyxl").columns
    assert {"Unnamed: 2", "Unnamed: 6"} <= set(header)  # the blank columns of the original
    result = load_samples("casme2", {"format": "casme2", "root": str(root)})
    table = result.samples
    assert list(table["sample"]) == [
        "casme2-01-EP02_01f", "casme2-01-EP19_05f", "casme2-02-EP01_11f", "casme2-02-EP11_01",
        "casme2-04-EP13_06f",
    ]  # fmt: skip
    assert list(table["label"]) == ["positive", "negative", "negative", "surprise", "negative"]
    assert table.loc[0, "frames_dir"] == str(root / "CASME2_RAW_selected" / "sub01" / "EP02_01f")
    assert table.loc[0, "subject"] == "casme2/01"
    assert table.loc[1, "aus"] == "4+10"
    # the official row with apex "/" is an "others" clip: excluded by the label set, not an error
    assert result.skipped.to_dict("records") == [
        {
            "dataset": "casme2",
            "row": 6,
            "subject": "casme2/04",
            "sample": "casme2-04-EP12_01f",
            "reason": "label excluded: others",
        }
    ]


def test_casme2_apex_slash_is_estimated_by_default_and_listed(tmp_path: Path) -> None:
    root = make_casme2(tmp_path)
    spec = {"format": "casme2", "root": str(root)}
    result = load_samples("casme2", spec, label_set="emotion")
    row = result.samples.set_index("sample").loc["casme2-04-EP12_01f"]
    assert row["onset"] <= row["apex"] <= row["offset"]
    (fix,) = result.corrections.to_dict("records")
    assert (fix["row"], fix["sample"], fix["field"], fix["old"]) == (6, "casme2-04-EP12_01f", "apex", "/")
    assert fix["new"] == str(row["apex"]) and "estimated" in fix["source"]


def test_missing_apex_policy_fail_and_skip(tmp_path: Path) -> None:
    root = make_casme2(tmp_path)
    spec = {"format": "casme2", "root": str(root)}
    message = error_of("casme2", spec, label_set="emotion", missing_apex="fail")
    assert f"{root / 'CASME2-coding-20140508.xlsx'} row 6 (sample casme2-04-EP12_01f)" in message
    assert "apex is not annotated ('/'); set ingest.missing_apex: estimate" in message
    result = load_samples("casme2", spec, label_set="emotion", missing_apex="skip")
    assert list(result.skipped["sample"]) == ["casme2-04-EP12_01f"]
    assert "ingest.missing_apex: skip" in result.skipped["reason"][0]
    assert result.corrections.empty


def test_casme2_frames_subfolder_is_configurable(tmp_path: Path) -> None:
    root = make_casme2(tmp_path, CASME2_ROWS[:2], frames="Cropped")
    table = load_samples("c2", {"format": "casme2", "root": str(root), "frames": "Cropped"}).samples
    assert table.loc[0, "frames_dir"] == str(root / "Cropped" / "sub01" / "EP02_01f")
    assert "CASME2_RAW_selected" in error_of("c2", {"format": "casme2", "root": str(root)})


def test_casme2_subject_read_as_number(tmp_path: Path) -> None:
    rows = [{**row, "subject": 1} for row in CASME2_ROWS[:2]]
    make_casme2(tmp_path, [{**row, "subject": "01"} for row in CASME2_ROWS[:2]])  # frames in sub01
    make_casme2(tmp_path, rows)  # annotation with Subject stored as the number 1
    table = load_samples("casme2", {"format": "casme2", "root": str(tmp_path)}).samples
    assert set(table["subject"]) == {"casme2/01"}


# ---------------------------------------------------------------------------------------------
# CAS(ME)³


@pytest.mark.parametrize("as_csv", [False, True])
def test_casme3(tmp_path: Path, as_csv: bool) -> None:
    root = make_casme3(tmp_path, as_csv=as_csv)
    spec = {"format": "casme3", "root": str(root)}
    if as_csv:
        spec["annotation"] = "casme3_part_A.csv"
    result = load_samples("casme3", spec)
    table = result.samples
    assert list(table["sample"]) == [
        "casme3-spNO.1-a-100", "casme3-spNO.1-a-200", "casme3-spNO.2-b-5", "casme3-spNO.2-d-12",
    ]  # fmt: skip
    assert list(table["label"]) == ["negative", "positive", "surprise", "negative"]
    assert table.loc[0, "frames_dir"] == str(root / "spNO.1" / "a" / "color")
    assert table.loc[0, "fold"] == "casme3-spNO.1"
    assert list(result.skipped["reason"]) == ["label excluded: others"]
    emotion = load_samples("casme3", spec, label_set="emotion").samples
    assert list(emotion["label"]) == ["disgust", "happy", "surprise", "others", "sad"]


# ---------------------------------------------------------------------------------------------
# SMIC


def test_smic_from_folder_layout(tmp_path: Path) -> None:
    root = make_smic(tmp_path / "smic")
    table = load_samples("smic", {"format": "smic", "root": str(root)}).samples
    assert list(table["sample"]) == [
        "smic-s1-s1_ne_01",
        "smic-s1-s1_po_01",
        "smic-s2-s2_ne_01",
        "smic-s2-s2_sur_01",
    ]
    assert list(table["subject"]) == ["smic/s1", "smic/s1", "smic/s2", "smic/s2"]
    assert list(table["emotion"]) == ["negative", "positive", "negative", "surprise"]
    assert list(table["label"]) == list(table["emotion"])
    assert (table.loc[0, "onset"], table.loc[0, "offset"]) == (1, 4)
    assert 1 <= table.loc[0, "apex"] <= 4
    assert table.loc[0, "frames_dir"] == str(root / "HS" / "s1" / "micro" / "negative" / "s1_ne_01")
    assert set(table["aus"]) == {""}


def test_smic_apex_is_the_frame_of_largest_motion(tmp_path: Path) -> None:
    root = tmp_path / "smic"
    shifts = [0, 0.5, 1.5, 3.0, 4.0, 2.5, 1.0, 0.2]  # largest displacement in frame 5
    write_moving_clip(root / "HS" / "s3" / "micro" / "positive" / "s3_po_01", shifts)
    write_moving_clip(root / "HS" / "s4" / "micro" / "surprise" / "s4_sur_01", [0, 3, 1, 0.5], seed=1)
    table = load_samples("smic", {"format": "smic", "root": str(root)}).samples
    assert list(table["apex"]) == [5, 2]
    assert list(table["offset"]) == [8, 4]


def test_smic_unknown_class_folder_and_empty_clip(tmp_path: Path) -> None:
    root = make_smic(tmp_path, [("s1", "negative", "s1_ne_01", 3), ("s1", "angry", "s1_an_01", 3)])
    (root / "HS" / "s1" / "micro" / "positive" / "s1_po_01").mkdir(parents=True)
    message = error_of("smic", {"format": "smic", "root": str(root)})
    assert "unknown emotion 'angry'" in message
    assert str(root / "HS" / "s1" / "micro" / "angry" / "s1_an_01") in message
    assert "no frame files" in message


def test_smic_missing_camera_folder(tmp_path: Path) -> None:
    message = error_of("smic", {"format": "smic", "root": str(tmp_path)})
    assert "HS/s1/micro/negative/s1_ne_01" in message
    assert "datasets.smic.frames" in message


# ---------------------------------------------------------------------------------------------
# MEGC2019 composite


def make_components(tmp_path: Path) -> dict[str, str]:
    return {
        "casme2": str(make_casme2(tmp_path / "casme2")),
        "samm": str(make_samm(tmp_path / "samm")),
        "smic": str(make_smic(tmp_path / "smic")),
    }


GT_ROWS = [
    ("casme2", "sub01", "EP02_01f", 1),
    ("CASME2", "sub04", "EP13_06f", 0),
    ("casme2", "sub04", "EP12_01f", 0),  # apex "/" in CASME II: estimated (an error with missing_apex: fail)
    ("samm", "006", "006_1_2", 1),
    ("SAMM", "7", "007_7_1", 2),  # "Other" in SAMM: the ground truth decides
    ("smic", "s01", "s01_ne_01", 0),
    ("smic", "s2", "s2_sur_01", 2),
]


def test_megc_qualifies_subjects_by_component(tmp_path: Path) -> None:
    sources = make_components(tmp_path)
    root = make_megc(tmp_path / "megc", [row for row in GT_ROWS if row[2] != "EP12_01f"])
    table = load_samples("megc", {"format": "megc", "root": str(root), "sources": sources}).samples
    assert list(table["subject"]) == [
        "casme2/01",
        "casme2/04",
        "samm/006",
        "samm/007",
        "smic/s1",
        "smic/s2",
    ]
    assert list(table["fold"]) == [
        "casme2-01",
        "casme2-04",
        "samm-006",
        "samm-007",
        "smic-s1",
        "smic-s2",
    ]
    assert set(table["dataset"]) == {"megc"}
    by_sample = table.set_index("sample")
    assert by_sample.loc["samm-007-007_7_1", "label"] == "surprise"
    assert by_sample.loc["samm-007-007_7_1", "emotion"] == "Other"
    assert by_sample.loc["casme2-01-EP02_01f", "onset"] == 46
    assert by_sample.loc["casme2-01-EP02_01f", "frames_dir"] == str(
        Path(sources["casme2"]) / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    )
    assert by_sample.loc["smic-s1-s1_ne_01", "label"] == "negative"


def test_megc_row_problems_name_the_gt_row(tmp_path: Path) -> None:
    sources = make_components(tmp_path)
    rows = [
        *GT_ROWS,
        ("samm", "006", "006_9_9", 0),
        ("casmeX", "1", "x", 0),
        ("smic", "s1", "s1_po_01", 7),
    ]
    root = make_megc(tmp_path / "megc", rows, header=True, file="combined_3_class_gt.csv")  # the variant with a header
    spec = {"format": "megc", "root": str(root), "sources": sources}
    message = error_of("megc", spec, missing_apex="fail")
    gt = root / "combined_3_class_gt.csv"
    assert f"{gt} row 4 (sample casme2-04-EP12_01f)" in message
    assert "apex is not annotated ('/')" in message
    assert f"{gt} row 9: samm clip 006_9_9 of subject 006 is not in the samm dataset at" in message
    assert "'casmeX' is not a MEGC2019 component" in message
    assert "label '7' is not 0 (negative)" in message
    result = load_samples("megc", spec, on_error="skip", missing_apex="fail")
    assert list(result.skipped["row"]) == [4, 9, 10, 11]
    assert len(result.samples) == 6
    assert len(load_samples("megc", spec, on_error="skip").samples) == 7  # the apex estimated


def test_megc_missing_component_root(tmp_path: Path) -> None:
    root = make_megc(tmp_path / "megc", [("samm", "006", "006_1_2", 1)])
    message = error_of("megc", {"format": "megc", "root": str(root), "sources": {"samm": str(tmp_path / "no")}})
    assert "needs samm" in message
    assert "datasets.megc.sources.samm" in message


# ---------------------------------------------------------------------------------------------
# frames, folds, labels


def test_list_frames_numbers_from_the_last_digit_run(tmp_path: Path) -> None:
    for name in [
        "006_05562.jpg",
        "img46.jpg",
        "image0001.bmp",
        "12.JPG",
        "notes.txt",
        "._img9.jpg",
        "cover.png",
    ]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "7.jpg").mkdir()
    frames = list_frames(tmp_path)
    assert list(frames) == [1, 12, 46, 5562]
    assert frames[5562].name == "006_05562.jpg"


def test_list_frames_errors(tmp_path: Path) -> None:
    with pytest.raises(MerecError, match="frame folder is missing"):
        list_frames(tmp_path / "nothing")
    (tmp_path / "img1.jpg").write_bytes(b"x")
    (tmp_path / "img01.png").write_bytes(b"x")
    with pytest.raises(MerecError, match=r"img01\.png and img1\.jpg both have frame number 1"):
        list_frames(tmp_path)


def test_clip_frame_paths(tmp_path: Path) -> None:
    table = load_samples("samm", samm_spec(make_samm(tmp_path))).samples
    row = table.iloc[0]
    paths = clip_frame_paths(row)
    assert [path.name for path in paths] == [f"006_{n:05d}.jpg" for n in range(10, 15)]
    assert len(clip_frame_paths(row.to_dict(), first=11, last=12)) == 2
    Row = namedtuple("Row", table.columns)
    assert clip_frame_paths(Row(*row), first=12) == paths[2:]
    (tmp_path / "006" / "006_1_2" / "006_00011.jpg").unlink()
    (tmp_path / "006" / "006_1_2" / "006_00013.jpg").unlink()
    with pytest.raises(MerecError) as info:
        clip_frame_paths(row)
    assert "frame(s) 11, 13 are missing" in str(info.value)
    assert str(tmp_path / "006" / "006_1_2") in str(info.value)
    assert "samm-006-006_1_2" in str(info.value)


def test_fold_id() -> None:
    assert fold_id("samm/006") == "samm-006"
    assert fold_id("casme3/spNO.1") == "casme3-spNO.1"
    with pytest.raises(MerecError):
        fold_id("samm/../x y")


def test_label_classes_fixed_order() -> None:
    for fmt in FORMATS:
        assert label_classes("3class", fmt) == ["negative", "positive", "surprise"]
    assert label_classes("3class") == ["negative", "positive", "surprise"]
    assert label_classes("emotion", "casme2") == [
        "happiness",
        "disgust",
        "repression",
        "surprise",
        "others",
    ]
    assert label_classes("emotion", "samm") == [
        "anger",
        "contempt",
        "happiness",
        "surprise",
        "other",
    ]
    assert len(label_classes("emotion", "casme3")) == 7
    with pytest.raises(MerecError, match="3class, emotion"):
        label_classes("5class")
    with pytest.raises(MerecError, match="pass fmt"):
        label_classes("emotion")
    with pytest.raises(MerecError, match="unknown dataset format"):
        label_classes("3class", "ck+")


def test_casme3_rows_fixture_is_consistent() -> None:
    # two clips of one recorded task (spNO.1/a) must get different sample ids
    assert {row["clip"] for row in CASME3_ROWS if row["subject"] == "spNO.1"} == {"a"}
