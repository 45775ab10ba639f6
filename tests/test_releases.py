"""Official annotation files as released: their variants, their quirks and their errata.

Every fixture copies an official layout (header rows, blank columns, text cells, CRLF, sheet
names) as documented in docs/datasets.md; each erratum of :mod:`merec.datasets.casme3` has a
test that writes the row as released and checks the correction and its record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from merec.datasets import load_samples
from merec.datasets.casme3 import ERRATA as CASME3_ERRATA
from merec.datasets.casme3 import FORMAT as CASME3_FORMAT
from merec.datasets.errata import Erratum, apply_errata
from merec.datasets.ingest import IngestParams, clips_folder
from merec.datasets.ingest import run as ingest
from tests.helpers.datasets import (
    SAMM_ROWS,
    error_of,
    make_casme2,
    make_casme3,
    make_casme3_clips,
    make_dataset,
    make_megc,
    make_samm,
    make_smic,
    rows_of,
    with_row,
)

DATA = Path(__file__).parent / "data"


def samples_of(name: str, spec: dict, **settings: object) -> list[str]:
    return list(load_samples(name, spec, **settings).samples["sample"])


# ---------------------------------------------------------------------------------------------
# SAMM


def test_samm_header_on_row_1_and_any_sheet_name_read_like_the_official_file(tmp_path: Path) -> None:
    official = samples_of("samm", {"format": "samm", "root": str(make_samm(tmp_path / "a"))})
    variant = make_samm(tmp_path / "b", header_row=1, sheet="Sheet1")
    assert samples_of("samm", {"format": "samm", "root": str(variant)}) == official


def test_samm_others_spelling_and_coder_notes_in_au_cells(tmp_path: Path) -> None:
    rows = with_row(with_row(with_row(SAMM_ROWS, 4, emotion="Others"), 0, aus="(R6 or R12)+R15"), 1, aus="ref(7B)+43")
    rows = with_row(rows, 2, aus="R14+17+soft focus")
    spec = {"format": "samm", "root": str(make_samm(tmp_path, rows))}
    result = load_samples("samm", spec)
    assert result.skipped["reason"].tolist() == ["label excluded: Others"]
    assert result.samples["aus"].tolist()[:3] == ["6+12+15", "7+43", "14+17"]
    emotion = load_samples("samm", spec, label_set="emotion").samples
    assert "other" in set(emotion["label"])


def test_samm_apex_minus_one_is_estimated_and_listed(tmp_path: Path) -> None:
    spec = {"format": "samm", "root": str(make_samm(tmp_path, with_row(SAMM_ROWS, 1, apex=-1)))}
    result = load_samples("samm", spec)
    row = result.samples.set_index("sample").loc["samm-006-006_1_3"]
    assert 20 <= row["apex"] <= 23
    fix = result.corrections.iloc[0]
    assert (fix["row"], fix["field"], fix["old"], fix["new"]) == (16, "apex", "-1", str(row["apex"]))


# ---------------------------------------------------------------------------------------------
# CASME II


@pytest.mark.parametrize("file", ["CASME2-coding-20190701.xlsx", "CASME2-coding-updated.xlsx"])
def test_casme2_other_release_names_are_found(tmp_path: Path, file: str) -> None:
    root = make_casme2(tmp_path, file=file)
    assert len(samples_of("casme2", {"format": "casme2", "root": str(root)})) == 5


def test_casme2_xls_release_is_read(tmp_path: Path) -> None:
    root = make_casme2(tmp_path)  # frames of the rows in tests/data/CASME2_label_Ver_2.xls
    (root / "CASME2-coding-20140508.xlsx").unlink()
    shutil.copy(DATA / "CASME2_label_Ver_2.xls", root)
    result = load_samples("casme2", {"format": "casme2", "root": str(root)})
    assert len(result.samples) == 5 and result.samples.loc[1, "aus"] == "4+10"


# ---------------------------------------------------------------------------------------------
# Durations, frame gaps and damaged frames


def test_a_clip_longer_than_the_dataset_allows_is_an_error(tmp_path: Path) -> None:
    rows = with_row(SAMM_ROWS, 0, offset=260)  # 251 frames = 1.26 s at 200 fps
    spec = {"format": "samm", "root": str(make_samm(tmp_path, rows))}
    message = error_of("samm", spec)
    assert "row 15" in message and "spans 251 frames" in message and "at 200 fps" in message
    assert "ingest.max_duration_s" in message
    assert "samm-006-006_1_2" in samples_of("samm", spec, max_duration_s=2.0)


def test_frame_gaps_are_filled_with_the_previous_frame_and_listed(tmp_path: Path) -> None:
    rows = with_row(SAMM_ROWS, 0, missing=[11, 13])  # onset 10, apex 12, offset 14
    spec = {"format": "samm", "root": str(make_samm(tmp_path / "samm", rows))}
    out = tmp_path / "interim" / "samples.csv"
    ingest("samm", spec, out, IngestParams.from_mapping({}))
    corrections = pd.read_csv(out.with_name("corrections.csv"), dtype=str)
    (fix,) = corrections[corrections["field"] == "frames"].to_dict("records")
    assert fix["sample"] == "samm-006-006_1_2" and fix["old"] == "missing 11, 13"
    listed = [json.loads(p.read_text()) for p in sorted(clips_folder(out).glob("shard-*.json"))]
    (clip,) = [c for shard in listed for c in shard["clips"] if c["row"]["sample"] == "samm-006-006_1_2"]
    names = ["006_00010.jpg", "006_00010.jpg", "006_00012.jpg", "006_00012.jpg", "006_00014.jpg"]
    assert [name for name, _ in clip["frames"]] == names


def test_frame_gaps_fail_or_skip_on_request(tmp_path: Path) -> None:
    spec = {"format": "samm", "root": str(make_samm(tmp_path, with_row(SAMM_ROWS, 1, missing=[22])))}
    message = error_of("samm", spec, frame_gaps="fail")
    assert "frame(s) 22 missing in" in message and "row 16" in message
    result = load_samples("samm", spec, frame_gaps="skip")
    assert "samm-006-006_1_3" in set(result.skipped["sample"])


def test_damaged_frame_list_in_the_casme3_release_format(tmp_path: Path) -> None:
    root = make_casme3(tmp_path)
    (root / "damaged.txt").write_text(
        "spNO.1 a 101.jpg  the image cannot open\n"
        "/date/databases/casme3/RGB/spNO.2/b/color/6.jpg\n"  # absolute, as image_with_bad_quality lists
    )
    spec = {"format": "casme3", "root": str(root), "damaged_frames": "damaged.txt"}
    result = load_samples("casme3", spec, on_error="skip")
    assert "frames" in set(result.corrections["field"])
    message = error_of("casme3", spec, frame_gaps="fail")
    assert "frame(s) 101 missing" in message
    # spNO.2 b: its apex frame 6 is damaged, so the clip cannot be used
    assert "apex 6 missing" in message and "apex listed as damaged" in message


# ---------------------------------------------------------------------------------------------
# CAS(ME)³ part A: the release's layout and its errata

CASME3_RELEASED = rows_of(
    ("spNO.1", "a", 100, 102, 104, "24+T18+16", "disgust"),
    ("spNO.1", "a", 200, 201, 203, "T18", "happy"),
    ("spNO.149", "d", 112, 83, 118, "T28+14", "fear"),  # apex before onset
    ("spNO.214", "c", 5, 5, 3460, "17+4", "disgust"),  # offset 3460 for 34
    ("spNO.216", "d", 3647, 2668, 2694, "38", "anger"),  # onset 3647 for 2647
    ("spNO.216", "e", 0, 0, 25, "14", "surprise"),  # frame 0 does not exist
    ("spNO.40", "e", 1812, 1824, 0, "18", "fear"),  # offset 0
    ("spNO.40", "e", 2327, 2363, 0, "14", "sad"),  # offset 0
    ("spNO.2", "e", 138, 143, 148, "1", "surprise"),  # apex occluded: the release removes it
)
FRAMES = {  # the frames each clip has, as corrected
    ("spNO.214", "c"): (5, 34),
    ("spNO.216", "d"): (2647, 2694),
    ("spNO.216", "e"): (1, 25),
    ("spNO.40", "e", 1812): (1812, 1845),
    ("spNO.40", "e", 2327): (2327, 2403),
}


def _released_casme3(root: Path) -> Path:
    rows = []
    for row in CASME3_RELEASED:
        first, last = FRAMES.get(
            (row["subject"], row["clip"], row["onset"]), FRAMES.get((row["subject"], row["clip"]), (None, None))
        )
        rows.append(row | ({"first": first, "last": last} if first is not None else {}))
    return make_casme3(root, rows)


def test_casme3_release_layout_text_cells_and_t_prefixed_aus(tmp_path: Path) -> None:
    samples = load_samples(
        "casme3", {"format": "casme3", "root": str(make_casme3(tmp_path, CASME3_RELEASED[:2]))}
    ).samples
    assert samples["aus"].tolist() == ["16+18+24", "18"]
    assert samples["onset"].tolist() == [100, 200]


def test_casme3_official_errata_are_applied_and_listed(tmp_path: Path) -> None:
    root = _released_casme3(tmp_path / "casme3")
    out = tmp_path / "interim" / "samples.csv"
    ingest("casme3", {"format": "casme3", "root": str(root)}, out, IngestParams.from_mapping({}))
    samples = pd.read_csv(out).set_index("sample")
    assert samples.loc["casme3-spNO.214-c-5", "offset"] == 34
    assert samples.loc["casme3-spNO.216-d-2647", ["onset", "apex", "offset"]].tolist() == [2647, 2668, 2694]
    assert samples.loc["casme3-spNO.216-e-1", ["onset", "apex"]].tolist() == [1, 1]
    assert samples.loc["casme3-spNO.40-e-1812", "offset"] == 1845
    assert samples.loc["casme3-spNO.40-e-2327", "offset"] == 2403
    assert 112 <= samples.loc["casme3-spNO.149-d-112", "apex"] <= 118  # estimated, the release's 83 dropped
    fixes = pd.read_csv(out.with_name("corrections.csv"), dtype=str)
    listed = set(zip(fixes["sample"], fixes["field"], fixes["old"], fixes["new"], strict=True))
    assert {
        ("casme3-spNO.214-c-5", "Offset", "3460", "34"),
        ("casme3-spNO.216-d-2647", "Onset", "3647", "2647"),
        ("casme3-spNO.216-e-1", "Onset", "0", "1"),
        ("casme3-spNO.216-e-1", "Apex", "0", "1"),
        ("casme3-spNO.40-e-1812", "Offset", "0", "1845"),
        ("casme3-spNO.40-e-2327", "Offset", "0", "2403"),
        ("casme3-spNO.149-d-112", "Apex", "83", "/"),
    } <= listed
    assert fixes["row"].notna().all() and fixes["source"].str.len().gt(10).all()
    skipped = pd.read_csv(out.with_name("skipped.csv"), dtype=str)
    (removed,) = skipped[skipped["reason"].str.startswith("erratum: ")].to_dict("records")
    assert removed["row"] == "10" and "occluded" in removed["reason"]


def test_casme3_without_errata_the_released_errors_fail_naming_their_rows(tmp_path: Path) -> None:
    root = _released_casme3(tmp_path)
    message = error_of("casme3", {"format": "casme3", "root": str(root)}, errata="none")
    assert "row 5 (sample casme3-spNO.214-c-5): onset 5 to offset 3460 spans 3456 frames" in message
    assert "row 4 (sample casme3-spNO.149-d-112): apex 83 is outside [onset 112, offset 118]" in message
    assert "row 6 (sample casme3-spNO.216-d-3647): onset 3647 is after offset 2694" in message
    assert "row 8 (sample casme3-spNO.40-e-1812): onset 1812 is after offset 0" in message


def test_an_erratum_leaves_an_already_corrected_row_alone(tmp_path: Path) -> None:
    corrected = rows_of(("spNO.214", "c", 5, 5, 34, "17+4", "disgust"), ("spNO.1", "a", 100, 102, 104, "4", "happy"))
    result = load_samples("casme3", {"format": "casme3", "root": str(make_casme3(tmp_path, corrected))})
    assert result.corrections.empty and len(result.samples) == 2


# ---------------------------------------------------------------------------------------------
# MEGC2019 composite: the ground truth as released, components with their own settings

CASME2_SUBJECTS, SAMM_SUBJECTS, SMIC_SUBJECTS = 24, 28, 16
COUNTS = {"casme2": 145, "samm": 133, "smic": 164}


def _spread(total: int, subjects: int) -> list[int]:
    return [total // subjects + (1 if index < total % subjects else 0) for index in range(subjects)]


def test_megc2019_official_ground_truth_with_its_counts(tmp_path: Path) -> None:
    gt: list[tuple[object, ...]] = []
    casme2_rows, samm_rows, smic_clips = [], [], []
    for index, count in enumerate(_spread(COUNTS["casme2"], CASME2_SUBJECTS), start=1):
        for clip in range(count):
            casme2_rows.append(
                dict(
                    zip(
                        ("subject", "clip", "onset", "apex", "offset", "aus", "emotion"),
                        (f"{index:02d}", f"EP{clip:02d}_01f", 1, 2, 3, "4", "disgust"),
                        strict=True,
                    )
                )
            )
            gt.append(("casme2", f"sub{index:02d}", f"EP{clip:02d}_01f", 0))
    for index, count in enumerate(_spread(COUNTS["smic"], SMIC_SUBJECTS), start=1):
        for clip in range(count):
            smic_clips.append((f"s{index}", "positive", f"s{index}_po_{clip:02d}", 3))
            gt.append(("smic", f"s{index:02d}", f"s{index:02d}_po_{clip:02d}", 1))
    for index, count in enumerate(_spread(COUNTS["samm"], SAMM_SUBJECTS), start=6):
        for clip in range(count):
            samm_rows.append(
                dict(
                    zip(
                        ("subject", "clip", "onset", "apex", "offset", "aus", "emotion"),
                        (index, f"{index:03d}_1_{clip}", 1, 2, 3, "12", "Surprise"),
                        strict=True,
                    )
                )
            )
            gt.append(("samm", str(index), f"{index:03d}_1_{clip}", 2))
    sources = {
        "casme2": {"root": str(make_casme2(tmp_path / "c2", casme2_rows, frames="Cropped")), "frames": "Cropped"},
        "samm": str(make_samm(tmp_path / "samm", samm_rows)),
        "smic": {"root": str(make_smic(tmp_path / "smic", smic_clips))},
    }
    root = make_megc(tmp_path / "megc", gt)
    assert (root / "combined_3class_gt.csv").read_bytes().startswith(b"casme2,sub01,EP00_01f,0\r\n")
    samples = load_samples("megc", {"format": "megc", "root": str(root), "sources": sources}).samples
    assert len(samples) == 442 and samples["fold"].nunique() == 68
    components = samples["subject"].str.split("/").str[0].value_counts().to_dict()
    assert components == COUNTS
    assert samples["label"].value_counts().to_dict() == {"negative": 145, "surprise": 133, "positive": 164}


# ---------------------------------------------------------------------------------------------
# More datasets: CAS(ME)³ part C and its one-folder-per-clip release, CASME, MMEW, 4DME


def test_mmew_others_frames_in_a_repression_folder(tmp_path: Path) -> None:
    rows = rows_of(("S01", "1_1", 1, 3, 5, "AU4", "disgust"), ("S01", "1_2", 1, 2, 3, "AU14", "others"))
    make_dataset("mmew", tmp_path, rows)
    (tmp_path / "Micro_Expression/others").rename(tmp_path / "Micro_Expression/repression")
    samples = load_samples("mmew", {"format": "mmew", "root": str(tmp_path)}, label_set="emotion").samples
    assert samples.set_index("sample").loc["mmew-S01-1_2", "frames_dir"].endswith("Micro_Expression/repression/1_2")


def test_casme3_release_with_one_folder_per_clip(tmp_path: Path) -> None:
    spec = {"format": "casme3", "root": str(make_casme3_clips(tmp_path))}
    samples = load_samples("casme3", spec).samples
    assert len(samples) == 4
    assert samples.loc[0, "frames_dir"] == str(tmp_path / "Part_A_ME_clip" / "frame" / "spNo.1_a_100")


def test_casme3_part_c_has_no_apex_and_full_width_commas(tmp_path: Path) -> None:
    rows = rows_of((1, 11, 373, None, 385, "R4，5", "negative"), (2, 1, 311, None, 316, "1", "surprise"),
                   (3, 1, 1360, None, 1372, "17", "others"))  # fmt: skip
    result = load_samples("c3c", {"format": "casme3c", "root": str(make_dataset("casme3c", tmp_path, rows))})
    samples = result.samples
    assert samples["sample"].tolist() == ["c3c-01-11", "c3c-02-1"] and samples.loc[0, "aus"] == "4+5"
    assert samples["apex"].between(samples["onset"], samples["offset"]).all()
    assert (result.corrections["field"] == "apex").sum() == 2  # every apex estimated, and listed
    strict = load_samples("c3c", {"format": "casme3c", "root": str(tmp_path)}, missing_apex="fail")
    assert len(strict.samples) == 2  # a dataset without an apex is estimated under any policy


@pytest.mark.parametrize(
    ("fmt", "rows", "labels"),
    [
        ("casme", rows_of((1, "EP01_5", 10, 12, 14, "4+9", "disgust"), (2, "EP03_2", 3, 4, 6, "12", "amusement"),
                          (2, "EP04_1", 3, 4, 6, None, "tense")), ["negative", "positive"]),
        ("mmew", rows_of(("S01", "1_1", 1, 3, 5, "AU4+AU7", "disgust"), ("S02", "2_4", 2, 3, 4, "12", "happiness"),
                         ("S02", "2_5", 1, 2, 3, "", "others")), ["negative", "positive"]),
        ("4dme", rows_of(("S01", "S01_01", 4, 5, 7, "AU4(k)+L7", "Negative"),
                         ("S02", "S02_02", 1, 2, 3, "AU1+AU2", "Surprise"),
                         ("S02", "S02_03", 1, 2, 3, "AU1", "Surprise+Positive")), ["negative", "surprise"]),
    ],
)  # fmt: skip
def test_further_datasets_in_their_official_layouts(tmp_path: Path, fmt: str, rows: list, labels: list) -> None:
    result = load_samples(fmt, {"format": fmt, "root": str(make_dataset(fmt, tmp_path, rows))})
    assert result.samples["label"].tolist() == labels
    assert result.skipped["reason"].str.startswith("label excluded").all() and len(result.skipped) == 1
    assert result.samples["fold"].nunique() == 2
    assert result.samples["aus"].str.len().gt(0).all()  # the AU column is read (CASME's is called AU)


# ---------------------------------------------------------------------------------------------
# Cross-dataset protocol: leave-one-dataset-out over a composite


def test_composite_leave_one_dataset_out(tmp_path: Path) -> None:
    sources = {
        "casme2": {"format": "casme2", "root": str(make_casme2(tmp_path / "casme2"))},
        "samm": {"format": "samm", "root": str(make_samm(tmp_path / "samm"))},
        "casme3": {"format": "casme3", "root": str(make_casme3(tmp_path / "casme3"))},
    }
    spec = {"format": "composite", "root": str(tmp_path), "sources": sources, "folds": "dataset"}
    samples = load_samples("cross", spec).samples
    assert sorted(samples["fold"].unique()) == ["casme2", "casme3", "samm"]
    assert samples.groupby("fold")["subject"].first().tolist() == ["casme2/01", "casme3/spNO.1", "samm/006"]
    by_sample = samples.set_index("sample")
    assert by_sample.loc["casme3-spNO.1-a-200", "label"] == "positive"  # casme3's own mapping: happy
    assert by_sample.loc["samm-007-007_6_1", "label"] == "negative"  # samm's: Contempt
    loso = load_samples("cross", spec | {"folds": "subject"}).samples
    assert loso["fold"].nunique() == loso["subject"].nunique() > 3
    assert "only the 3class label set" in error_of("cross", spec, label_set="emotion")
    assert "needs a composite" in error_of("samm", sources["samm"] | {"folds": "dataset"})
    assert "at least two datasets" in error_of("cross", spec | {"sources": {"samm": sources["samm"]}})


@pytest.mark.parametrize("fix", CASME3_ERRATA, ids=lambda fix: "-".join(text for _, text in fix.row) + f"-{fix.column}")
def test_each_casme3_erratum_matches_its_row_as_released_and_only_that_row(fix: Erratum) -> None:
    released = {column: "1" for column in CASME3_FORMAT.columns} | dict(fix.row)
    if fix.column is not None:
        released[fix.column] = fix.old
    record = dict(released)
    made, removed = apply_errata(record, CASME3_ERRATA)
    if fix.column is None:
        assert removed == fix.source and made == []
    else:
        assert removed is None and record[fix.column] == fix.new
        assert {"field": fix.column, "old": fix.old, "new": fix.new, "source": fix.source} in made
    other = dict(released, Subject="spNO.999")  # another subject's row with the same cells
    assert apply_errata(dict(other), CASME3_ERRATA) == ([], None)
