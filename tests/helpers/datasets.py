"""Builders of small datasets that copy the official layouts (used by the dataset tests).

Each builder writes, under a given root, an annotation file laid out like the official one
(SAMM's 13 preamble rows and header on Excel row 14, CASME II's blank columns, Subject stored
as a number or as text like the originals) and frame folders with tiny images named like the
originals. Rows are dicts with the keys ``subject, clip, onset, apex, offset, aus, emotion``;
any value may be a raw cell value (``"/"``, ``None``, ``4.0``) to copy quirks of real files.
Frames are written for ``onset..offset`` unless the row says ``frames=False`` or lists
``missing`` frame numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openpyxl

Row = dict[str, Any]

SAMM_FILE = "SAMM_Micro_FACS_Codes_v2.xlsx"
SAMM_HEADER = [
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
]  # fmt: skip
CASME2_FILE = "CASME2-coding-20140508.xlsx"
CASME2_HEADER = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
    "Action Units", "Estimated Emotion",
]  # fmt: skip
CASME3_FILE = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
CASME3_HEADER = [
    "Subject",
    "Filename",
    "Onset",
    "Apex",
    "Offset",
    "AU",
    "Objective class",
    "emotion",
]
MEGC_FILE = "combined_3class_gt.csv"  # as released: no header row, CRLF line ends

FIELDS = ("subject", "clip", "onset", "apex", "offset", "aus", "emotion")


def rows_of(*values: tuple[Any, ...]) -> list[Row]:
    """Row dicts from tuples in :data:`FIELDS` order."""
    return [dict(zip(FIELDS, row, strict=True)) for row in values]


def with_row(rows: Sequence[Row], index: int, **changes: Any) -> list[Row]:
    """A copy of ``rows`` with row ``index`` changed."""
    copy = [dict(row) for row in rows]
    copy[index].update(changes)
    return copy


def error_of(name: str, spec: dict[str, Any], **settings: Any) -> str:
    """The MerecError message of reading dataset ``name`` (``settings``: ingest keys)."""
    from merec.datasets import load_samples
    from merec.errors import MerecError

    try:
        load_samples(name, spec, **settings)
    except MerecError as exc:
        return str(exc)
    raise AssertionError(f"reading dataset {name} raised no MerecError")


SAMM_ROWS = rows_of(
    (6, "006_1_2", 10, 12, 14, "R12+L14", "Happiness"),
    (6, "006_1_3", 20, 21, 23, "4+7", "Anger"),
    (7, "007_3_1", 5, 6, 8, "1+2+5B", "Surprise"),
    (7, "007_6_1", 30, 31, 32, 12.0, "Contempt"),  # an AU cell Excel stores as a number
    (7, "007_7_1", 40, 41, 42, "", "Other"),
)
CASME2_ROWS = rows_of(
    ("01", "EP02_01f", 46, 59, 86, "12", "happiness"),
    ("01", "EP19_05f", 1, 3, 5, "4+L10", "disgust"),
    ("02", "EP01_11f", 10, 11, 12, "R12", "repression"),
    ("02", "EP11_01", 3, 4, 6, "1+2", "surprise"),
    ("04", "EP12_01f", 20, "/", 25, "4", "others"),  # the official file's apex "/" row
    ("04", "EP13_06f", 7, 8, 9, "4+7", "disgust"),
)
CASME3_ROWS = rows_of(
    ("spNO.1", "a", 100, 102, 104, "4+7", "disgust"),
    ("spNO.1", "a", 200, 201, 203, "12", "happy"),  # a second clip of the same task
    ("spNO.2", "b", 5, 6, 7, "1+2", "surprise"),
    ("spNO.2", "c", 9, 10, 11, "", "others"),
    ("spNO.2", "d", 12, 13, 14, "15", "sad"),
)
# (subject folder, class folder, clip folder, number of frames)
SMIC_CLIPS: list[tuple[str, str, str, int]] = [
    ("s1", "negative", "s1_ne_01", 4),
    ("s1", "positive", "s1_po_01", 4),
    ("s2", "surprise", "s2_sur_01", 3),
    ("s2", "negative", "s2_ne_01", 3),
]


@cache
def _tiny_image(suffix: str) -> bytes:
    ok, data = cv2.imencode(suffix, np.full((8, 8, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def write_frames(folder: Path, numbers: Iterable[int], name: Callable[[int], str]) -> None:
    """Tiny image files ``folder/name(n)`` for each frame number (no folder when there are none)."""
    numbers = list(numbers)
    if numbers:
        folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        target = folder / name(number)
        target.write_bytes(_tiny_image(target.suffix))


def _frame_numbers(row: Row) -> list[int]:
    if not row.get("frames", True):
        return []
    first, last = row.get("first", row["onset"]), row.get("last", row["offset"])
    if not (isinstance(first, int) and isinstance(last, int)):
        return []
    return [n for n in range(first, last + 1) if n not in row.get("missing", ())]


def _write_xlsx(
    path: Path,
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    *,
    sheet: str = "Sheet1",
    header_row: int = 1,
    preamble: Sequence[str] = (),
    empty_sheets: Sequence[str] = (),
    as_text: bool = False,
) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for name in empty_sheets:
        book.create_sheet(name)
    for index, text in enumerate(preamble, start=1):
        ws.cell(row=index, column=1, value=text)
    for column, value in enumerate(header, start=1):
        if value is not None:
            ws.cell(row=header_row, column=column, value=value)
    for offset, values in enumerate(rows, start=1):
        for column, value in enumerate(values, start=1):
            if value is not None and value != "":
                ws.cell(row=header_row + offset, column=column, value=str(value) if as_text else value)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def make_samm(
    root: Path, rows: Sequence[Row] = tuple(SAMM_ROWS), *, header_row: int = 14, sheet: str = "MICRO_ONLY"
) -> Path:
    """SAMM layout: xlsx sheet MICRO_ONLY, preamble on rows 1-13, header row 14, data from 15
    (``header_row=1, sheet="Sheet1"`` writes the variant copies some users hold)."""
    preamble = ["SAMM Micro-Movement Dataset", "", "FACS coded micro-movements (fixture)"]
    preamble = (preamble + [""] * 10)[: header_row - 1]
    table = []
    for row in rows:
        onset, offset = row["onset"], row["offset"]
        duration = offset - onset + 1 if isinstance(onset, int) and isinstance(offset, int) else None
        table.append([
            row["subject"], row["clip"], "1", onset, row["apex"], offset, duration, "Micro - 1/2",
            row["aus"], row["emotion"], "1", None,
        ])  # fmt: skip
        subject = f"{int(row['subject']):03d}" if str(row["subject"]).isdigit() else None
        if subject is not None and isinstance(row["clip"], str) and "/" not in row["clip"]:
            write_frames(
                root / subject / row["clip"],
                _frame_numbers(row),
                lambda n, s=subject: f"{s}_{n:05d}.jpg",
            )
    _write_xlsx(root / SAMM_FILE, SAMM_HEADER, table, sheet=sheet, header_row=header_row, preamble=preamble)
    return root


def make_casme2(
    root: Path,
    rows: Sequence[Row] = tuple(CASME2_ROWS),
    frames: str = "CASME2_RAW_selected",
    *,
    file: str = CASME2_FILE,
) -> Path:
    """CASME II layout: xlsx with blank columns C and G, sheets Sheet1-3 (2 and 3 empty);
    frames ``<frames>/subNN/<clip>/img<n>.jpg``.

    ``frames`` is the sub-folder of the root holding the ``subNN`` folders; ``file`` the
    annotation's name (other releases: ``CASME2-coding-20190701.xlsx``, ...).
    """
    table = [
        [
            row["subject"],
            row["clip"],
            None,
            row["onset"],
            row["apex"],
            row["offset"],
            None,
            row["aus"],
            row["emotion"],
        ]
        for row in rows
    ]
    for row in rows:
        folder = root / frames / f"sub{row['subject']}" / str(row["clip"])
        if ".." not in str(row["clip"]):
            write_frames(folder, _frame_numbers(row), lambda n: f"img{n}.jpg")
    _write_xlsx(root / file, CASME2_HEADER, table, empty_sheets=("Sheet2", "Sheet3"))
    return root


def make_casme3(root: Path, rows: Sequence[Row] = tuple(CASME3_ROWS), *, as_csv: bool = False) -> Path:
    """CAS(ME)³ part A layout: xlsx as released (sheet ``label`` beside empty ``Sheet1`` and
    ``Sheet3``, every cell stored as text) or csv; frames ``<Subject>/<Filename>/color/<n>.jpg``."""
    table = [
        [
            row["subject"],
            row["clip"],
            row["onset"],
            row["apex"],
            row["offset"],
            row["aus"],
            "1",
            row["emotion"],
        ]
        for row in rows
    ]
    for row in rows:
        write_frames(root / row["subject"] / row["clip"] / "color", _frame_numbers(row), lambda n: f"{n}.jpg")
    if as_csv:
        path = root / "casme3_part_A.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CASME3_HEADER)
            writer.writerows(table)
    else:
        _write_xlsx(
            root / CASME3_FILE, CASME3_HEADER, table, sheet="label", empty_sheets=("Sheet1", "Sheet3"), as_text=True
        )
    return root


def make_smic(root: Path, clips: Sequence[tuple[str, str, str, int]] = tuple(SMIC_CLIPS), first: int = 1) -> Path:
    """SMIC cropped layout: ``HS/<subject>/micro/<class>/<clip>/image<n>.bmp`` (no annotation)."""
    for subject, emotion, clip, count in clips:
        folder = root / "HS" / subject / "micro" / emotion / clip
        write_frames(folder, range(first, first + count), lambda n: f"image{n:06d}.bmp")
    return root


def write_moving_clip(folder: Path, shifts: Sequence[float], size: int = 64, seed: int = 0) -> None:
    """A clip of a smooth random texture translated right by ``shifts[i]`` px in frame i+1."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (size * 2, size * 2)).astype(np.float32), (0, 0), 2.0)
    folder.mkdir(parents=True, exist_ok=True)
    for index, shift in enumerate(shifts, start=1):
        matrix = np.float32([[1, 0, shift], [0, 1, 0]])
        moved = cv2.warpAffine(texture, matrix, texture.shape[::-1], borderMode=cv2.BORDER_REFLECT)
        crop = moved[size // 2 : size // 2 + size, size // 2 : size // 2 + size]
        cv2.imwrite(str(folder / f"image{index:06d}.bmp"), np.clip(crop, 0, 255).astype(np.uint8))


def make_megc(
    root: Path, rows: Sequence[tuple[Any, Any, Any, Any]], *, header: bool = False, file: str = MEGC_FILE
) -> Path:
    """MEGC2019 ground truth as released (``combined_3class_gt.csv``, no header, CRLF): rows of
    (data, subject, clip, label); ``header=True`` writes the ``data,subject,clip,label`` variant."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / file).open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        if header:
            writer.writerow(["data", "subject", "clip", "label"])
        writer.writerows(rows)
    return root


# The further formats: (annotation file, sheet, header, row -> cells, row -> frame folder, frame name
# pattern with {n} and {clip})
MORE_LAYOUTS: dict[str, tuple[str, str, list[str], Callable[[Row], list[Any]], Callable[[Row], str], str]] = {
    "casme3c": (
        "CAS(ME)3_part_C_ME.xlsx", "mockCrimeME", ["sub", "count", "onset", "offset", "au", "emotion"],
        lambda r: [r["subject"], r["clip"], r["onset"], r["offset"], r["aus"], r["emotion"]],
        lambda r: f"{int(r['subject']):02d}/{r['clip']}/color", "{n}.jpg",
    ),
    "casme": (  # blank columns C and H and an AU column, as the copy public loaders read
        "casme.xlsx", "Sheet1",
        ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AU", "Emotion"],
        lambda r: [r["subject"], r["clip"], None, r["onset"], r["apex"], None, r["offset"], None, r["aus"],
                   r["emotion"]],
        lambda r: f"CASME_raw_selected/sub{int(r['subject']):02d}/{r['clip']}", "{clip}-{n}.jpg",
    ),
    "mmew": (
        "MMEW_Micro_Exp.xlsx", "Sheet1",
        ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
         "remarks"],
        lambda r: [r["subject"], r["clip"], r["onset"], r["apex"], r["offset"], r["aus"], r["emotion"], None],
        lambda r: f"Micro_Expression/{r['emotion']}/{r['clip']}", "{n}.jpg",
    ),
    "4dme": (
        "4DME_Labelling_Micro_release v1.xlsx", "Sheet1",
        ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"],
        lambda r: [r["subject"], r["clip"], r["emotion"], r["onset"], r["apex"], r["offset"], r["aus"]],
        lambda r: f"gray_micro/{r['subject']}/{r['clip']}", "img{n:03d}.jpg",
    ),
}  # fmt: skip


def make_dataset(fmt: str, root: Path, rows: Sequence[Row]) -> Path:
    """A dataset of one of :data:`MORE_LAYOUTS` with frames for each row's onset..offset."""
    file, sheet, header, cells, folder, name = MORE_LAYOUTS[fmt]
    _write_xlsx(root / file, header, [cells(row) for row in rows], sheet=sheet)
    for row in rows:
        write_frames(root / folder(row), _frame_numbers(row), lambda n, row=row: name.format(n=n, clip=row["clip"]))
    return root


def make_casme3_clips(root: Path, rows: Sequence[Row] = tuple(CASME3_ROWS)) -> Path:
    """The CAS(ME)³ release with one folder per clip: ``Part_A_ME_clip/frame/spNo.1_a_100/100.jpg``
    (the folder spelled ``spNo`` where the labels say ``spNO``)."""
    make_casme3(root, [dict(row, frames=False) for row in rows])
    for row in rows:
        clip = f"{row['subject'].replace('spNO', 'spNo')}_{row['clip']}_{row['onset']}"
        write_frames(root / "Part_A_ME_clip" / "frame" / clip, _frame_numbers(row), lambda n: f"{n}.jpg")
    return root
