"""MEGC spotting metrics and STRS on hand-worked examples (merec's definitions and the reference's)."""

from __future__ import annotations

import pandas as pd
import pytest

from merec.errors import MerecError
from merec.spotting.metrics import analysis_scores, interval_iou, match_intervals, spotting_scores, strs


def table(rows: list[tuple], columns: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def test_iou_counts_both_ends_of_each_interval() -> None:
    assert interval_iou(10, 19, 15, 24) == pytest.approx(5 / 15)  # frames 15..19 shared of 10..24
    assert interval_iou(0, 9, 0, 9) == 1.0
    assert interval_iou(0, 9, 10, 19) == 0.0  # adjacent, nothing shared
    assert interval_iou(0, 0, 0, 0) == 1.0  # a one-frame interval


def test_each_prediction_and_each_interval_count_once() -> None:
    truth = table([("v", 0, 9), ("v", 100, 109)], "video onset offset")
    predictions = table([("v", 0, 9), ("v", 1, 10), ("v", 200, 209)], "video onset offset")
    scores = spotting_scores(truth, predictions)["overall"]
    # (0, 9) matches the first interval; (1, 10) overlaps it too (IoU 9/11) but it is taken
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 2, 1)
    assert (
        scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == 0.5 and scores["f1"] == pytest.approx(0.4)
    )


def test_matching_finds_the_most_pairs_not_the_greedy_best_first() -> None:
    truth = table([("v", 0, 9), ("v", 2, 11)], "video onset offset")
    # (1, 9): IoU 0.9 with the first, 8/11 with the second; (0, 6): 0.7 with the first only
    predictions = table([("v", 1, 9), ("v", 0, 6)], "video onset offset")
    matches = match_intervals(truth, predictions)
    assert sorted(zip(matches["truth"], matches["prediction"], strict=True)) == [(0, 1), (1, 0)]
    assert spotting_scores(truth, predictions)["overall"]["tp"] == 2  # greedy by IoU would find one


def test_types_are_matched_and_counted_apart_and_summed_overall() -> None:
    truth = table([("v", 0, 9, "micro"), ("v", 50, 99, "macro"), ("w", 0, 30, "macro")], "video onset offset type")
    predictions = table([("v", 0, 9, "macro"), ("w", 2, 30, "macro")], "video onset offset type")
    scores = spotting_scores(truth, predictions)
    assert [scores["micro"][k] for k in ("tp", "fp", "fn")] == [0, 0, 1]  # a macro prediction never hits a micro
    assert [scores["macro"][k] for k in ("tp", "fp", "fn")] == [1, 1, 1]
    assert [scores["overall"][k] for k in ("tp", "fp", "fn")] == [1, 1, 2]


def test_analysis_f1_is_built_from_mean_precision_and_mean_recall() -> None:
    truth = ["negative", "negative", "positive", "surprise"]
    recognised = ["negative", "positive", "positive", "negative"]
    scores = analysis_scores(truth, recognised, ["negative", "positive", "surprise"])
    # precision 1/2, 1/2, 0 -> 1/3; recall 1/2, 1, 0 -> 1/2; 2PR/(P+R) = 0.4 (the mean per-class F1 would be 4/9)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.4)


def _strs_example() -> tuple[pd.DataFrame, pd.DataFrame]:
    truth = table(
        [(1, "a", 0, 9, "negative"), (1, "a", 0, 10, "positive"), (2, "b", 0, 9, "surprise")],
        "subject video onset offset emotion",
    )
    predictions = table([(1, "a", 0, 9, "negative"), (1, "c", 0, 9, "negative")], "subject video onset offset emotion")
    return truth, predictions


def test_strs_counts_every_interval_and_every_prediction() -> None:
    truth, predictions = _strs_example()
    result = strs(truth, predictions)
    spot = result["spotting"]
    # one match (IoU 1 beats 10/11); the prediction on video c is a false positive; subject 2's interval is missed
    assert (spot["tp"], spot["fp"], spot["fn"]) == (1, 1, 2) and spot["f1"] == pytest.approx(0.4)
    assert result["classes"] == ["negative", "positive", "surprise"]
    assert result["analysis"]["f1"] == pytest.approx(1 / 3)  # P = R = 1/3 over the three classes
    assert result["strs"] == pytest.approx(0.4 / 3)


def test_compat_reproduces_the_reference_scorers_counting() -> None:
    truth, predictions = _strs_example()
    result = strs(truth, predictions, compat=True)
    spot = result["spotting"]
    # subject 2 has no predictions and video c no ground truth: both ignored; the one prediction claims
    # both overlapping intervals, two true positives
    assert (spot["tp"], spot["fp"], spot["fn"]) == (2, 0, 0) and spot["f1"] == 1.0
    analysis = result["analysis"]
    # pairs (negative, negative), (positive, negative): negative P 1/2 R 1; positive 0, 0; surprise never
    # appears among the pairs (a one-cell confusion matrix): 0, 0
    assert analysis["precision"] == pytest.approx(1 / 6) and analysis["recall"] == pytest.approx(1 / 3)
    assert analysis["f1"] == pytest.approx(2 / 9) and result["strs"] == pytest.approx(2 / 9)
    assert analysis["uar_compat"] == pytest.approx(1 / 6) and analysis["uf1"] == pytest.approx(2 / 9)


def test_bad_tables_are_named() -> None:
    truth = table([("v", 9, 0)], "video onset offset")
    with pytest.raises(MerecError, match=r"ground truth: row 0 \(video v\) ends before it starts"):
        spotting_scores(truth, table([], "video onset offset"))
    with pytest.raises(MerecError, match="predictions: missing column"):
        spotting_scores(table([("v", 0, 9)], "video onset offset"), table([("v", 0)], "video onset"))
    with pytest.raises(MerecError, match="unknown interval type"):
        spotting_scores(table([("v", 0, 9, "mega")], "video onset offset type"), table([], "video onset offset type"))
    with pytest.raises(MerecError, match="STRS needs an emotion column"):
        strs(table([("v", 0, 9)], "video onset offset"), table([("v", 0, 9)], "video onset offset"))
