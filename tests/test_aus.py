"""Property tests of the AU parser and of the annotation-cell and row parsers."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from merec.datasets import load_samples, parse_aus
from merec.datasets.aus import MAX_AU, format_aus
from merec.datasets.casme2 import FORMAT as CASME2
from merec.datasets.casme2 import match_key as casme2_key
from merec.datasets.casme3 import FORMAT as CASME3
from merec.datasets.cells import RowProblem, frame_number
from merec.datasets.frames import frame_number_of
from merec.datasets.ids import is_safe_id
from merec.datasets.megc import gt_label
from merec.datasets.samm import FORMAT as SAMM
from merec.datasets.samm import match_key as samm_key
from merec.datasets.smic import match_key as smic_key
from merec.errors import MerecError
from tests.helpers.datasets import CASME3_HEADER, write_frames

AU = st.integers(min_value=0, max_value=MAX_AU)
AU_SETS = st.lists(AU, max_size=8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("R12+L14", [12, 14]),
        ("4+7", [4, 7]),
        ("1+2+5B", [1, 2, 5]),
        ("AU4+AU7", [4, 7]),
        ("12, 14", [12, 14]),
        ("L10 + 4", [4, 10]),
        ("12?", [12]),
        ("4.0", [4]),
        ("12.0+14.0", [12, 14]),
        (4.0, [4]),
        (12, [12]),
        (None, []),
        (math.nan, []),
        ("", []),
        ("  ", []),
        ("/", []),
        ("?", []),
        ("4+4+4", [4]),
    ],
)
def test_examples(text: object, expected: list[int]) -> None:
    assert parse_aus(text) == expected


@pytest.mark.parametrize("text", ["4.5", 4.5, "happy", "12%", "1214", True, "4 and 7"])
def test_rejects_with_the_text_in_the_message(text: object) -> None:
    with pytest.raises(MerecError) as info:
        parse_aus(text)
    assert repr(text) in str(info.value)


@given(AU_SETS)
def test_round_trip(aus: list[int]) -> None:
    assert parse_aus(format_aus(aus)) == sorted(set(aus))


@given(
    st.lists(
        st.tuples(
            AU,
            st.sampled_from(["", "L", "R", "U", "AU", "AU "]),
            st.sampled_from(["", "A", "B", "C", "D", "E", "?"]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["+", " + ", ", ", ";", "/", " "]),
)
def test_marks_and_separators_do_not_change_the_set(codes: list[tuple[int, str, str]], sep: str) -> None:
    text = sep.join(f"{prefix}{number}{suffix}" for number, prefix, suffix in codes)
    assert parse_aus(text) == sorted({number for number, _, _ in codes})


@given(st.text(max_size=30))
def test_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        result = parse_aus(text)
    except MerecError as exc:
        assert repr(text) in str(exc)
    else:
        assert result == sorted(set(result))
        assert all(isinstance(number, int) and 0 <= number <= MAX_AU for number in result)


@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.none(), st.booleans()))
def test_never_crashes_on_numbers(value: object) -> None:
    try:
        result = parse_aus(value)
    except MerecError:
        return
    assert all(isinstance(number, int) for number in result)


# ---------------------------------------------------------------------------------------------
# annotation cells and rows


@given(st.integers(min_value=0, max_value=10**7))
def test_frame_number_accepts_every_spelling_of_an_integer(number: int) -> None:
    for cell in (number, float(number), str(number), f" {number} ", f"{number}.0"):
        assert frame_number(cell) == number


@given(st.one_of(st.text(max_size=12), st.floats(), st.integers(max_value=-1), st.none()))
def test_frame_number_rejects_everything_else_cleanly(cell: object) -> None:
    try:
        number = frame_number(cell)
    except RowProblem:
        return
    assert isinstance(number, int) and number >= 0


@given(
    st.text("abcxyz_-", max_size=6),
    st.integers(min_value=0, max_value=10**6),
    st.text("_-.abc", max_size=4),
)
def test_frame_number_of_stem_is_the_last_digit_run(prefix: str, number: int, tail: str) -> None:
    assert frame_number_of(f"{prefix}{number}{tail}") == number


ROWS = st.fixed_dictionaries(
    {
        "Subject": st.one_of(st.integers(0, 999), st.integers(0, 999).map(float), st.text(max_size=5)),
        "Filename": st.one_of(st.from_regex(r"[0-9]{3}_[0-9]_[0-9]{1,2}", fullmatch=True), st.text(max_size=8)),
        "Onset Frame": st.one_of(st.integers(-2, 50), st.sampled_from(["/", "", None, "7", 3.5])),
        "Apex Frame": st.one_of(st.integers(-2, 50), st.sampled_from(["/", "", None])),
        "Offset Frame": st.one_of(st.integers(-2, 50), st.none()),
        "Action Units": st.one_of(st.text(max_size=10), st.integers(0, 99)),
        "Estimated Emotion": st.sampled_from(["Anger", "Happiness", "Other", "Joy", ""]),
    }
)


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_samm_row_parser_never_crashes_and_ids_stay_safe(record: dict) -> None:
    base = Path("data/raw/samm")
    found = SAMM.candidate("samm", base, "codes.xlsx row 15", 15, record)
    if found.sample is not None:
        assert is_safe_id(found.sample)
        assert found.frames_dir is not None and found.frames_dir.parent.parent == base
    if not found.problems:
        assert found.subject == f"samm/{int(float(record['Subject'])):03d}"
        assert isinstance(found.onset, int) and isinstance(found.offset, int)
        assert isinstance(found.apex, int) or (found.apex is None and found.apex_missing is not None)


@given(
    st.integers(1, 999),
    st.from_regex(r"[0-9]{3}_[0-9]_[0-9]{1,2}", fullmatch=True),
    st.integers(0, 9000),
)
def test_samm_valid_rows_parse_without_problems(subject: int, clip: str, onset: int) -> None:
    record = {
        "Subject": subject, "Filename": clip, "Onset Frame": onset, "Apex Frame": onset + 1,
        "Offset Frame": onset + 2, "Action Units": "R12+L14", "Estimated Emotion": "Happiness",
    }  # fmt: skip
    found = SAMM.candidate("samm", Path("root"), "codes.xlsx row 15", 15, record)
    assert found.problems == []
    assert found.sample == f"samm-{subject:03d}-{clip}"
    assert found.frames_dir == Path("root") / f"{subject:03d}" / clip
    assert (found.onset, found.apex, found.offset, found.aus) == (
        onset,
        onset + 1,
        onset + 2,
        "12+14",
    )


# ---------------------------------------------------------------------------------------------
# the other row parsers: ids stay plain, frame folders stay inside the dataset root

CELLS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["..", "../..", "/etc", "a/b", "C:\\x", "~", ".hidden", "sub01", "spNO.1", "EP02_01f"]),
    st.integers(-5, 500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["casme2", "casme3"]),
    st.fixed_dictionaries({"subject": CELLS, "clip": CELLS, "onset": CELLS, "apex": CELLS, "offset": CELLS}),
    st.one_of(st.text(max_size=10), st.none(), st.integers(0, 99)),
)
def test_row_parsers_keep_ids_plain_and_folders_inside_the_root(fmt: str, cells: dict, aus: object) -> None:
    parser = CASME2 if fmt == "casme2" else CASME3
    record = {
        parser.subject_col: cells["subject"], parser.clip_col: cells["clip"], parser.onset_col: cells["onset"],
        parser.apex_col: cells["apex"], parser.offset_col: cells["offset"], parser.aus_col: aus,
        parser.emotion_col: "disgust",
    }  # fmt: skip
    base = Path("/data/raw/x")
    found = parser.candidate(fmt, base, "file row 2", 2, record)
    if found.sample is not None:
        assert is_safe_id(found.sample)
    if found.frames_dir is not None:
        assert found.frames_dir.resolve().is_relative_to(base)
        assert ".." not in found.frames_dir.parts
    if not found.problems:
        assert all(isinstance(v, int) and v >= 0 for v in (found.onset, found.offset))
        assert (isinstance(found.apex, int) and found.apex >= 0) or found.apex_missing is not None


@given(st.one_of(st.text(max_size=6), st.integers(-3, 5), st.floats(), st.none()))
def test_megc_label_cells_map_to_a_class_or_a_row_problem(cell: object) -> None:
    try:
        label = gt_label(cell)
    except RowProblem as exc:
        assert "is not 0 (negative), 1 (positive) or 2 (surprise)" in str(exc)
    else:
        assert label in ("negative", "positive", "surprise")


@given(st.one_of(st.text(max_size=10), st.integers(0, 99), st.none()), st.one_of(st.text(max_size=10), st.none()))
def test_megc_subject_keys_are_plain_or_a_row_problem(subject: object, clip: object) -> None:
    for key_of in (samm_key, casme2_key, smic_key):
        try:
            key = key_of(subject, clip)
        except RowProblem:
            continue
        assert is_safe_id(key[0]) and key[0] == key[0].casefold()


# ---------------------------------------------------------------------------------------------
# whole annotation files: every row ends up in the samples or in the skipped list, never lost

BAD_CELLS = {
    "subject": ["../up", "", "sp 3"],
    "clip": ["..", "/etc", "c"],  # c: no frame folder
    "onset": ["/", "", "x", 5],  # 5: after the offset, or no frame 5+
    "apex": ["/", "", 6],
    "offset": ["", 6],
    "aus": ["12%", "1234"],
    "emotion": ["Joy", "", "others"],  # others: excluded by the 3-class label set
}


@st.composite
def annotation_row(draw: st.DrawFn) -> dict:
    """A valid CAS(ME)³ row (frames 0-4 exist), with one cell spoiled half of the time."""
    onset, apex, offset = sorted(draw(st.lists(st.integers(0, 4), min_size=3, max_size=3)))
    row = {
        "subject": draw(st.sampled_from(["spNO.1", "spNO.2"])), "clip": draw(st.sampled_from(["a", "b"])),
        "onset": onset, "apex": apex, "offset": offset, "aus": draw(st.sampled_from(["4+7", "R12", "", "AU1+AU2"])),
        "emotion": draw(st.sampled_from(["happy", "disgust", "surprise"])),
    }  # fmt: skip
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(BAD_CELLS)))
        row[key] = draw(st.sampled_from(BAD_CELLS[key]))
    return row


TABLE_ROWS = st.lists(annotation_row(), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(TABLE_ROWS)
def test_every_annotation_row_is_kept_or_listed(rows: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "casme3"
        for subject in ("spNO.1", "spNO.2"):
            for clip in ("a", "b"):
                write_frames(root / subject / clip / "color", range(0, 5), lambda n: f"{n}.jpg")  # no frame 6
        fields = ("subject", "clip", "onset", "apex", "offset", "aus")
        table = [[*(row[key] for key in fields), "1", row["emotion"]] for row in rows]
        (root / "a.csv").write_text("\n".join(",".join(map(str, row)) for row in [CASME3_HEADER, *table]) + "\n")
        spec = {"format": "casme3", "root": str(root), "annotation": "a.csv"}
        nonblank = [n + 2 for n, row in enumerate(table) if any(str(cell) != "" for cell in row)]
        try:
            result = load_samples("c3", spec, on_error="skip")
        except MerecError as exc:
            assert "no usable samples" in str(exc)
            event("no usable samples")
            return
        skipped = result.skipped[result.skipped["row"].notna()]
        assert len(result.samples) + len(skipped) == len(nonblank)
        assert set(skipped["row"]) <= set(nonblank)
        bad = skipped[~skipped["reason"].str.startswith("label excluded: ")]
        dropped = set(result.skipped.loc[result.skipped["row"].isna(), "subject"])
        assert dropped == set(bad["subject"].dropna()) - set(result.samples["subject"])
        try:
            strict = load_samples("c3", spec, on_error="fail")
        except MerecError as exc:
            assert len(bad) > 0
            assert all(f"row {row} " in str(exc) or f"row {row}:" in str(exc) for row in bad["row"])
        else:
            assert bad.empty and strict.samples.equals(result.samples)
        event(f"kept {min(len(result.samples), 2)}+, bad {min(len(bad), 2)}+")
