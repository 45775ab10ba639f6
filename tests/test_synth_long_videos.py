"""The embedded long-video dataset: SAMM-LV's format (read by the real adapter), its timing, its
distractors, determinism; and the long-video ingest (videos table, shard video lists, labels)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from merec.datasets.clips import read_clip_list
from merec.datasets.long_ingest import read_intervals, read_videos, run
from merec.datasets.long_videos import read_samm_lv
from merec.datasets.settings import IngestParams
from merec.errors import MerecError
from merec.synth.long_videos import LongVideoParams, generate_long_videos, plan_videos

TINY = {"subjects": 3, "duration_s": [5.0, 6.0], "micro_per_video": [2, 2], "macro_per_video": [1, 1],
        "frame_size": 128, "macro_duration_s": [0.8, 1.2]}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_lv") / "raw"
    generate_long_videos(root, LongVideoParams.from_mapping(TINY))
    return root


def test_the_samm_lv_reader_reads_the_generated_release_as_the_real_one(release: Path) -> None:
    data = read_samm_lv(release, "synth_lv")
    plan = json.loads((release / "synth.json").read_text())
    assert len(data.videos) == 3 and set(data.videos["fps"]) == {30.0}  # the rate the generator states
    assert data.corrections.empty and data.skipped.empty
    events = [event for video in plan["videos"] for event in video["events"]]
    assert len(data.intervals) == len(events) == 9
    assert sorted(data.intervals["type"].value_counts().items()) == [("macro", 3), ("micro", 6)]
    micro = data.intervals[data.intervals["type"] == "micro"]
    assert micro["emotion"].ne("").all()  # from the short-clip workbook beside it, as for the real release
    assert data.intervals.loc[data.intervals["type"] == "macro", "emotion"].eq("").all()
    first = sorted((release / "SAMM_longvideos" / "001_1").iterdir())[0].name
    assert first == "001_1_0001.jpg"


def test_expressions_never_overlap_and_keep_their_lengths() -> None:
    params = LongVideoParams.from_mapping({**TINY, "subjects": 6, "duration_s": [20.0, 30.0],
                                           "micro_per_video": [2, 4], "macro_per_video": [1, 3]})  # fmt: skip
    for video in plan_videos(params):
        spans = sorted((event.onset, event.offset) for event in video.events)
        assert all(a[1] + params.fps * 0.8 <= b[0] for a, b in itertools.pairwise(spans))
        assert spans[0][0] >= params.fps and spans[-1][1] < video.frames - params.fps
        for event in video.events:
            low, high = params.micro_duration_s if event.kind == "micro" else params.macro_duration_s
            assert low * params.fps - 1 <= event.offset - event.onset + 1 <= high * params.fps + 1
            assert event.onset < event.apex < event.offset
        assert video.blinks  # distractors are there
        for first, last, _ in video.talks:  # talking stays away from the expressions
            assert all(last < onset - 0.4 * params.fps or first > offset for onset, offset in spans)


def test_the_plan_is_deterministic_and_follows_the_seed() -> None:
    longer = {**TINY, "duration_s": [8.0, 9.0]}
    first = plan_videos(LongVideoParams.from_mapping(longer))
    assert [v.events for v in first] == [v.events for v in plan_videos(LongVideoParams.from_mapping(longer))]
    other = plan_videos(LongVideoParams.from_mapping({**longer, "seed": 5}))
    assert [v.frames for v in first] != [v.frames for v in other]


def test_too_many_expressions_for_the_video_is_a_clear_error() -> None:
    params = LongVideoParams.from_mapping({**TINY, "micro_per_video": [6, 6]})
    with pytest.raises(MerecError, match="do not fit.*lengthen synth_lv.duration_s"):
        plan_videos(params)


def test_ingest_writes_videos_intervals_labels_and_shard_lists_with_frame_hashes(release: Path, tmp_path: Path) -> None:
    out = tmp_path / "videos.csv"
    assert run("synth_lv", {"format": "samm_lv", "root": str(release)}, out,
               IngestParams.from_mapping({"shards": [0, 1]})) == 3  # fmt: skip
    videos, intervals = read_videos(out), read_intervals(out)
    assert list(videos["fold"]) == ["001", "002", "003"] and set(videos["shards"]) == {2}
    micro = intervals[intervals["type"] == "micro"]
    assert set(micro["label"]) <= {"negative", "positive", "surprise"} and intervals.loc[
        intervals["type"] == "macro", "label"].eq("").all()  # fmt: skip
    listed = [read_clip_list(tmp_path / "videos" / f"shard-{k}.json") for k in (0, 1)]
    clips = {clip.sample: clip for shard in listed for clip in shard.clips}
    assert set(clips) == set(videos["video"])
    for row in videos.itertuples(index=False):
        assert len(clips[row.video].frames) == row.frames == row.last - row.first + 1
        assert int(videos.loc[videos["video"] == row.video, "shard"].iloc[0]) == next(
            s.shard for s in listed if row.video in {c.sample for c in s.clips})  # fmt: skip
    for name in ("skipped.csv", "corrections.csv"):
        assert pd.read_csv(tmp_path / name).empty


def test_a_missing_release_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(MerecError, match="does not exist; put the release there"):
        run("samm_lv", {"format": "samm_lv", "root": str(tmp_path / "nowhere")}, tmp_path / "v.csv",
            IngestParams.from_mapping({}))  # fmt: skip


def test_overlapping_annotations_of_one_type_are_named() -> None:
    from merec.datasets.long_ingest import overlaps

    table = pd.DataFrame({"row": [11, 12, 13, 14], "video": ["a", "a", "a", "b"],
                          "type": ["micro", "micro", "macro", "micro"], "onset": [10, 15, 12, 10],
                          "offset": [20, 30, 40, 20]})  # fmt: skip
    assert overlaps(table) == [(11, 12, "a", "micro")]  # a macro over a micro is no conflict
