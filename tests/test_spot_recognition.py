"""Spot-then-recognize: the clip dataset of a spotting run, predict-only rows in training, STRS of the
recognised spotted intervals (a hand-worked example)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merec.au_graph import fold_graph
from merec.datasets.clips import read_clip_list
from merec.datasets.ids import sample_id
from merec.datasets.ingest import PREDICT_ONLY, read_samples
from merec.datasets.settings import IngestParams
from merec.errors import MerecError
from merec.io import write_csv
from merec.spotting.recognition import clip_rows, spotted_key, strs_report, write_clips
from merec.train import split_fold
from tests.helpers import REPO

VIDEOS = pd.DataFrame({
    "video": ["001_1", "002_1"], "subject": ["lv/001", "lv/002"], "fold": ["001", "002"],
    "folder": ["f1", "f2"], "frames": [60, 60], "first": [1, 1], "last": [60, 60], "fps": [30.0, 30.0],
    "shard": [0, 0], "shards": [1, 1],
})  # fmt: skip
TRUTH = pd.DataFrame({
    "row": [11, 12, 13, 14, 15], "subject": ["lv/001", "lv/001", "lv/001", "lv/002", "lv/002"],
    "video": ["001_1", "001_1", "001_1", "002_1", "002_1"], "onset": [5, 30, 45, 10, 20],
    "apex": [8, 33, 48, 13, 30], "offset": [12, 38, 52, 16, 50],
    "type": ["micro", "micro", "micro", "micro", "macro"],
    "emotion": ["happiness", "surprise", "other", "anger", ""], "aus": ["12", "1+2", "4", "4", ""],
    "label": ["positive", "surprise", "", "negative", ""], "fold": ["001", "001", "001", "002", "002"],
})  # fmt: skip
SPOTTED = pd.DataFrame({
    "video": ["001_1", "001_1", "001_1", "001_1", "002_1", "002_1", "001_1"],
    "subject": ["lv/001"] * 4 + ["lv/002"] * 2 + ["lv/001"],
    "type": ["micro", "micro", "micro", "micro", "micro", "macro", "micro"],
    "onset": [4, 31, 45, 55, 40, 20, 4], "offset": [12, 39, 53, 59, 46, 48, 12], "peak": [8, 35, 49, 57, 43, 30, 8],
    "score": 1.0, "seed": [0, 0, 0, 0, 0, 0, 1],
})  # fmt: skip


def test_the_clip_dataset_fits_on_labelled_annotations_and_predicts_the_true_positive_intervals() -> None:
    table = clip_rows("lv-spotted", VIDEOS, TRUTH, SPOTTED)
    fitted = table[table[PREDICT_ONLY] == 0]
    spotted = table[table[PREDICT_ONLY] == 1]
    # labelled micro-expressions only: not the unlabelled one (row 13) nor the macro-expression (row 15)
    assert sorted(fitted["truth_row"]) == [11, 12, 14]
    assert list(fitted.loc[fitted["truth_row"] == 12, ["onset", "apex", "offset"]].iloc[0]) == [30, 33, 38]
    # the IoU >= 0.5 matches of labelled annotations, each once over both seeds; not the false positives,
    # nor the interval on the unlabelled annotation, nor the macro one
    assert sorted(zip(spotted["truth_row"], spotted["onset"], spotted["offset"], spotted["apex"], strict=True)) == [
        (11, 4, 12, 8), (12, 31, 39, 35)]  # fmt: skip
    assert list(spotted.sort_values("truth_row")["label"]) == ["positive", "surprise"]
    assert set(table["sample"]) >= {sample_id("lv/001", spotted_key("001_1", 4, 12, 8))}
    assert set(table["dataset"]) == {"lv-spotted"} and table["sample"].is_unique


def test_predict_only_rows_are_never_fitted_nor_in_an_au_graph() -> None:
    samples = pd.DataFrame({
        "sample": ["a", "b", "c", "d"], "subject": ["s1", "s1", "s2", "s2"], "fold": ["s1", "s1", "s2", "s2"],
        "aus": ["1", "1", "2", "12"], PREDICT_ONLY: [0, 1, 0, 1],
    })  # fmt: skip
    split = split_fold(samples, "s1", 0, 0)
    assert list(samples.iloc[split.test_rows]["sample"]) == ["a", "b"]  # predicted in its own fold
    assert list(samples.iloc[split.fit_rows]["sample"]) == ["c"]  # "d" (predict-only) is not fitted
    graph = fold_graph(samples, "s1", [1, 2, 12])
    assert list(np.diag(graph["counts"])) == [0, 1, 0]  # AU 12 of the predict-only row "d" is not counted


def _frames(folder: Path, numbers: range, name: str) -> None:
    folder.mkdir(parents=True)
    image = np.full((16, 16, 3), 128, np.uint8)
    for number in numbers:
        cv2.imwrite(str(folder / f"{name}_{number:04d}.jpg"), image)


@pytest.fixture
def spotting_run(tmp_path: Path) -> dict[str, Path]:
    """A long-video dataset's tables on disk (video 001_1 lacks frames 36-37 and 53-60) and its spotted intervals."""
    _frames(tmp_path / "f1", [*range(1, 36), *range(38, 53)], "001_1")
    _frames(tmp_path / "f2", range(1, 61), "002_1")
    videos = VIDEOS.assign(folder=[str(tmp_path / "f1"), str(tmp_path / "f2")])
    paths = {"videos": tmp_path / "lv" / "videos.csv", "spotted": tmp_path / "spotting" / "intervals.csv"}
    write_csv(paths["videos"], videos)
    write_csv(paths["videos"].with_name("intervals.csv"), TRUTH)
    write_csv(paths["spotted"], SPOTTED)
    paths["samples"] = tmp_path / "lv-spotted" / "samples.csv"
    return paths


def test_write_clips_lists_every_frame_fills_gaps_and_skips_clips_without_their_end_frames(spotting_run) -> None:
    paths = spotting_run
    count = write_clips("lv", "samm_lv", paths["videos"], paths["spotted"], paths["samples"],
                        IngestParams.from_mapping({"shards": [0, 1]}))  # fmt: skip
    samples = read_samples(paths["samples"])
    assert count == len(samples) == 5  # 3 annotated + 2 spotted
    classes = json.loads(paths["samples"].with_name("classes.json").read_text())
    assert classes == {"label_set": "3class", "classes": ["negative", "positive", "surprise"]}
    clips = [clip for shard in (0, 1) for clip in read_clip_list(paths["samples"].parent / "clips" /
                                                                 f"shard-{shard}.json").clips]  # fmt: skip
    by_sample = {clip.sample: clip for clip in clips}
    assert set(by_sample) == set(samples["sample"])
    gapped = by_sample[sample_id("lv/001", spotted_key("001_1", 31, 39, 35))]
    names = [path.name for path in gapped.frames]
    assert len(names) == 9 and names[5:7] == ["001_1_0035.jpg", "001_1_0035.jpg"]  # 36, 37 filled with 35
    # a clip whose last frame is missing is listed in skipped.csv, not half-written
    write_csv(paths["spotted"], pd.concat([SPOTTED, SPOTTED.iloc[[2]].assign(onset=46, offset=55, peak=50)]))
    truth = TRUTH.copy()
    truth.loc[2, ["offset", "label"]] = [55, "negative"]
    write_csv(paths["videos"].with_name("intervals.csv"), truth)
    write_clips("lv", "samm_lv", paths["videos"], paths["spotted"], paths["samples"],
                IngestParams.from_mapping({"shards": [0]}))  # fmt: skip
    skipped = pd.read_csv(paths["samples"].with_name("skipped.csv"))
    # row 13 (45-55) and the spotted (46, 55) need frame 55; the spotted (45, 53), now on a labelled row, frame 53
    assert sorted(skipped["reason"]) == ["frame 53 of the clip is missing"] + ["frame 55 of the clip is missing"] * 2


def test_write_clips_needs_labelled_micro_expressions_in_two_subjects(spotting_run) -> None:
    paths = spotting_run
    write_csv(paths["videos"].with_name("intervals.csv"), TRUTH[TRUTH["subject"] == "lv/001"])
    with pytest.raises(MerecError, match="fewer than two subjects"):
        write_clips("lv", "samm_lv", paths["videos"], paths["spotted"], paths["samples"],
                    IngestParams.from_mapping({}))  # fmt: skip


def _predictions(folder: Path, fold: str, rows: list[tuple[str, str, str]]) -> None:
    (folder / fold).mkdir(parents=True)
    table = pd.DataFrame(rows, columns=["sample", "label", "predicted"]).assign(subject=fold, fold=fold)
    write_csv(folder / fold / "predictions.csv", table)


def test_strs_of_recognised_spotted_intervals_matches_a_hand_worked_example(spotting_run, tmp_path: Path) -> None:
    """Spotting seed 0: micro intervals (4, 12) on row 11 (positive), (31, 39) on row 12 (surprise), (45, 53)
    on the unlabelled row 13: 3 true positives; (55, 59) and (40, 46) are false positives; row 14 is missed:
    TP 3, FP 2, FN 1 -> P 3/5, R 3/4, F1 2/3. Recognised: positive -> positive,
    surprise -> negative; analysis over the classes (neg, pos, sur): precision (0, 1, 0), recall (0, 1, 0)
    -> P = R = 1/3, F1 1/3. STRS = 2/3 x 1/3 = 2/9."""
    paths = spotting_run
    write_clips("lv", "samm_lv", paths["videos"], paths["spotted"], paths["samples"], IngestParams.from_mapping({}))
    folds = tmp_path / "folds" / "seed-0"
    tp_11, tp_12 = (sample_id("lv/001", spotted_key("001_1", a, b, c)) for a, b, c in ((4, 12, 8), (31, 39, 35)))
    annotated = [sample_id("lv/001", f"001_1-row{row}") for row in (11, 12)]
    _predictions(folds, "001", [(annotated[0], "positive", "positive"), (annotated[1], "surprise", "surprise"),
                                (tp_11, "positive", "positive"), (tp_12, "surprise", "negative")])  # fmt: skip
    _predictions(folds, "002", [(sample_id("lv/002", "002_1-row14"), "negative", "positive")])
    report = strs_report(paths["videos"], paths["spotted"], paths["samples"], tmp_path / "folds",
                         tmp_path / "strs.json", [0], "lv")  # fmt: skip
    seed0 = report["per_pair"]["spot-0/train-0"]["defined"]
    assert (seed0["spotting"]["tp"], seed0["spotting"]["fp"], seed0["spotting"]["fn"]) == (3, 2, 1)
    assert seed0["spotting"]["f1"] == pytest.approx(2 / 3)
    assert seed0["analysis"]["f1"] == pytest.approx(1 / 3)
    assert seed0["strs"] == pytest.approx(2 / 9)
    # spotting seed 1 found only (4, 12): TP 1, FP 0, FN 3 -> F1 0.4; its one pair is right -> analysis
    # P = (0 + 1 + 0) / 3, R = (0 + 1 + 0) / 3 -> 1/3; STRS 0.4 / 3
    seed1 = report["per_pair"]["spot-1/train-0"]["defined"]
    assert seed1["spotting"]["f1"] == pytest.approx(0.4) and seed1["strs"] == pytest.approx(0.4 / 3)
    assert report["defined"]["strs"]["mean"] == pytest.approx((2 / 9 + 0.4 / 3) / 2)
    assert report["recognised_intervals"] == 2 and report["annotated_clips"]["0"]["uf1"] == pytest.approx(
        np.mean([0.0, 2 / 3, 1.0])
    )  # negative: 0; positive: P 1/2, R 1 -> 2/3; surprise: 1
    assert json.loads((tmp_path / "strs.json").read_text())["compat"]["strs"]["values"] == pytest.approx(
        [r["compat"]["strs"] for r in report["per_pair"].values()]
    )


def test_spot_clips_without_a_spotting_run_names_the_file_and_the_stage(spotting_run, capsys) -> None:
    from merec.cli import main

    paths = spotting_run
    paths["spotted"].unlink()
    files = ["--videos", str(paths["videos"]), "--spotted", str(paths["spotted"]), "--output", str(paths["samples"])]
    code = main(["spot-clips", "--params", str(REPO / "params.yaml"), "--dataset", "synth_lv", *files])
    assert code == 2
    assert f"{paths['spotted']} is missing; run the spotting evaluate stage" in capsys.readouterr().err
    assert not paths["samples"].parent.exists()


@pytest.mark.parametrize("policy", ["estimate", "skip", "fail"])
def test_an_annotated_clip_without_an_apex_follows_ingest_missing_apex(spotting_run, policy: str) -> None:
    paths = spotting_run
    truth = TRUTH.astype({"apex": object})
    truth.loc[0, "apex"] = None  # row 11: apex not annotated (SAMM-LV's -1)
    write_csv(paths["videos"].with_name("intervals.csv"), truth)
    params = IngestParams.from_mapping({"missing_apex": policy})
    if policy == "fail":
        with pytest.raises(MerecError, match="row 11 .* has no apex; set ingest.missing_apex"):
            write_clips("lv", "samm_lv", paths["videos"], paths["spotted"], paths["samples"], params)
        return
    write_clips("lv", "samm_lv", paths["videos"], paths["spotted"], paths["samples"], params)
    samples = read_samples(paths["samples"]).set_index("sample")
    sample = sample_id("lv/001", "001_1-row11")
    if policy == "estimate":
        assert 5 <= samples.loc[sample, "apex"] <= 12
    else:
        assert sample not in samples.index
        assert "ingest.missing_apex: skip" in paths["samples"].with_name("skipped.csv").read_text()
