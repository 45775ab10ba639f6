"""Label sets and the emotion -> class mapping of every dataset format.

Two label sets exist, each with a FIXED class order (never derived from the data):

* ``3class``: MEGC2019's classes, index 0 negative, 1 positive, 2 surprise, for every format.
* ``emotion``: each dataset's standard emotion classes:

  - CASME II: happiness, disgust, repression, surprise, others (the usual 5 classes; the few
    fear and sadness clips are excluded);
  - SAMM: anger, contempt, happiness, surprise, other (the usual 5 classes; disgust, fear and
    sadness are excluded);
  - SMIC: negative, positive, surprise (SMIC has no finer labels);
  - CAS(ME)³: anger, disgust, fear, happy, sad, surprise, others (the 7 classes of part A);
  - CAS(ME)³ part C: negative, positive, surprise, others (its annotation's classes);
  - CASME: amusement, contempt, disgust, fear, repression, sadness, surprise, tense;
  - MMEW: happiness, anger, surprise, disgust, fear, sadness, others;
  - 4DME: positive, negative, surprise, repression, others;
  - MEGC2019 composite: negative, positive, surprise (its ground truth has only these).

``3class`` follows MEGC2019's mappings where it defines them (CASME II, SAMM, SMIC) and the same
rules elsewhere: disgust, repression, sadness, fear, anger and contempt are negative, happiness
(happy, amusement) positive; others, tense and 4DME's combined emotions are excluded. A
``composite`` of datasets has only ``3class`` (each component mapped by its own format).

Emotion strings are matched case-insensitively after trimming white space; the spellings seen in
copies of the official files (SAMM's ``Others`` for ``Other``) are read as the official one. An
emotion of the dataset's vocabulary that a label set leaves out is *excluded* (the row is
skipped, not an error); an emotion outside the vocabulary is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from merec.datasets.cells import RowProblem
from merec.errors import MerecError

THREE_CLASS = ("negative", "positive", "surprise")
LABEL_SETS = ("3class", "emotion")

# Every emotion each format's annotations may contain, mapped per label set (None: excluded).
_MAPPINGS: dict[str, dict[str, dict[str, str | None]]] = {
    "casme2": {
        "3class": {
            "disgust": "negative", "repression": "negative", "happiness": "positive",
            "surprise": "surprise", "others": None, "fear": None, "sadness": None,
        },
        "emotion": {
            "happiness": "happiness", "disgust": "disgust", "repression": "repression",
            "surprise": "surprise", "others": "others", "fear": None, "sadness": None,
        },
    },
    "samm": {
        "3class": {
            "anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
            "sadness": "negative", "happiness": "positive", "surprise": "surprise", "other": None,
        },
        "emotion": {
            "anger": "anger", "contempt": "contempt", "happiness": "happiness",
            "surprise": "surprise", "other": "other", "disgust": None, "fear": None,
            "sadness": None,
        },
    },
    "smic": {
        "3class": {name: name for name in THREE_CLASS},
        "emotion": {name: name for name in THREE_CLASS},
    },
    "casme3": {
        "3class": {
            "disgust": "negative", "fear": "negative", "anger": "negative", "sad": "negative",
            "happy": "positive", "surprise": "surprise", "others": None,
        },
        "emotion": {
            name: name
            for name in ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")
        },
    },
    "megc": {
        "3class": {name: name for name in THREE_CLASS},
        "emotion": {name: name for name in THREE_CLASS},
    },
    "casme3c": {
        "3class": {"negative": "negative", "positive": "positive", "surprise": "surprise", "others": None},
        "emotion": {name: name for name in ("negative", "positive", "surprise", "others")},
    },
    "casme": {
        "3class": {
            "disgust": "negative", "sadness": "negative", "fear": "negative", "contempt": "negative",
            "repression": "negative", "amusement": "positive", "happiness": "positive",
            "surprise": "surprise", "tense": None,
        },
        "emotion": {
            name: name
            for name in ("amusement", "contempt", "disgust", "fear", "happiness", "repression", "sadness",
                         "surprise", "tense")
        },
    },
    "mmew": {
        "3class": {
            "anger": "negative", "disgust": "negative", "fear": "negative", "sadness": "negative",
            "happiness": "positive", "surprise": "surprise", "others": None,
        },
        "emotion": {
            name: name for name in ("happiness", "anger", "surprise", "disgust", "fear", "sadness", "others")
        },
    },
    "4dme": {
        "3class": {
            "negative": "negative", "repression": "negative", "positive": "positive", "surprise": "surprise",
            "others": None,
        },
        "emotion": {name: name for name in ("positive", "negative", "surprise", "repression", "others")},
    },
}  # fmt: skip
#: Formats whose emotion cells may combine classes (``Surprise+Positive``): such rows are excluded.
_COMBINED = frozenset({"4dme"})

# Spellings seen in copies of the official files, read as the official spelling.
_SPELLINGS: dict[str, dict[str, str]] = {
    "samm": {"others": "other"},
    "casme2": {"other": "others"},
    "casme3": {"other": "others"},
    "casme3c": {"other": "others"},
    "mmew": {"other": "others"},
    "4dme": {"other": "others"},
}

_EMOTION_CLASSES: dict[str, tuple[str, ...]] = {
    "casme2": ("happiness", "disgust", "repression", "surprise", "others"),
    "samm": ("anger", "contempt", "happiness", "surprise", "other"),
    "smic": THREE_CLASS,
    "casme3": ("anger", "disgust", "fear", "happy", "sad", "surprise", "others"),
    "megc": THREE_CLASS,
    "casme3c": ("negative", "positive", "surprise", "others"),
    "casme": ("amusement", "contempt", "disgust", "fear", "repression", "sadness", "surprise", "tense"),
    "mmew": ("happiness", "anger", "surprise", "disgust", "fear", "sadness", "others"),
    "4dme": ("positive", "negative", "surprise", "repression", "others"),
}


def check_label_set(label_set: str) -> str:
    """Return ``label_set`` or raise a MerecError listing the valid label sets."""
    if label_set not in LABEL_SETS:
        raise MerecError(f"unknown label set {label_set!r}; use one of: {', '.join(LABEL_SETS)}")
    return label_set


def check_format(fmt: str) -> str:
    """Return ``fmt`` or raise a MerecError listing the supported dataset formats."""
    if fmt not in _MAPPINGS:
        raise MerecError(f"unknown dataset format {fmt!r}; use one of: {', '.join(_MAPPINGS)}")
    return fmt


def label_classes(label_set: str, fmt: str | None = None) -> list[str]:
    """The fixed class order of ``label_set`` (``emotion`` depends on the dataset format)."""
    check_label_set(label_set)
    if fmt == "composite" and label_set != "3class":
        raise MerecError("a composite of datasets has only the 3class label set")
    if fmt is not None and fmt != "composite":
        check_format(fmt)
    if label_set == "3class":
        return list(THREE_CLASS)
    if fmt is None:
        raise MerecError(f"label set 'emotion' differs per dataset format; pass fmt, one of: {', '.join(_MAPPINGS)}")
    return list(_EMOTION_CLASSES[fmt])


@dataclass(frozen=True)
class LabelMap:
    """Emotion -> class mapping of one format under one label set."""

    fmt: str
    label_set: str
    mapping: dict[str, str | None]

    @classmethod
    def of(cls, fmt: str, label_set: str) -> LabelMap:
        """The mapping of ``fmt`` under ``label_set`` (both validated)."""
        check_label_set(label_set)
        return cls(fmt, label_set, _MAPPINGS[check_format(fmt)][label_set])

    @property
    def vocabulary(self) -> list[str]:
        """Every emotion the format's annotations may contain."""
        return sorted(self.mapping)

    def classify(self, emotion: str) -> str | None:
        """Class of ``emotion``; None when the label set excludes it; RowProblem when unknown."""
        key = normalise_emotion(emotion)
        key = _SPELLINGS.get(self.fmt, {}).get(key, key)
        if self.fmt in _COMBINED and "+" in key:
            return None
        if key not in self.mapping:
            raise RowProblem(
                f"unknown emotion {emotion!r}; this dataset's emotions are: "
                f"{', '.join(self.vocabulary)} (case does not matter)"
            )
        return self.mapping[key]


def normalise_emotion(emotion: str) -> str:
    """Trimmed, case-folded emotion string used for matching."""
    return str(emotion).strip().casefold()
