"""Property tests of the AU parser and of the annotation-cell and row parsers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from merec.datasets import parse_aus
from merec.datasets.aus import MAX_AU, format_aus
from merec.datasets.common import RowProblem, frame_number, frame_number_of, is_safe_id
from merec.datasets.samm import FORMAT as SAMM
from merec.io import MerecError

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
def test_marks_and_separators_do_not_change_the_set(
    codes: list[tuple[int, str, str]], sep: str
) -> None:
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
        "Subject": st.one_of(
            st.integers(0, 999), st.integers(0, 999).map(float), st.text(max_size=5)
        ),
        "Filename": st.one_of(
            st.from_regex(r"[0-9]{3}_[0-9]_[0-9]{1,2}", fullmatch=True), st.text(max_size=8)
        ),
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
        assert (
            isinstance(found.onset, int)
            and isinstance(found.apex, int)
            and isinstance(found.offset, int)
        )


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
