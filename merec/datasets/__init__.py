"""Dataset adapters: each supported dataset's annotations and frame folders become ONE table.

:func:`load_samples` reads a dataset described by its params entry ``datasets.<name>``::

    {"format": "samm", "root": "data/raw/samm", "annotation": "...", "frames": "...",
     "sources": {...}}

``format`` is one of :data:`FORMATS`; ``root`` defaults to ``data/raw/<name>``; ``annotation``
defaults to the official file name inside the root (a bare file name is looked up in the root,
any other path is used as given); ``frames`` is the sub-folder of the root that holds the
subject folders (default per format: SAMM and CAS(ME)³ the root, CASME II
``CASME2_RAW_selected``, SMIC ``HS``); ``sources`` (MEGC2019 only) maps ``casme2``, ``samm``,
``smic`` to each component's root (or to a mapping with root/annotation/frames).

The result's ``samples`` has the columns :data:`SAMPLE_COLUMNS`, sorted by (subject, sample):

* ``subject`` is qualified by the dataset name (``samm/006``; for MEGC2019 by the component,
  ``casme2/01``) and ``fold`` = :func:`fold_id` of it (``samm-006``);
* ``sample`` is ``<fold>-<clip>`` (``samm-006-006_1_2``, ``casme2-01-EP02_01f``,
  ``smic-s1-s1_ne_01``; CAS(ME)³ adds the onset: ``casme3-spNO.1-a-123``), unique and made of
  ``[A-Za-z0-9_.-]`` only;
* ``onset``/``apex``/``offset`` are frame numbers as in the frame file names (see
  :func:`list_frames`); ``emotion`` is the original string, ``label`` its class under the label
  set (see :mod:`merec.datasets.labels`), ``aus`` the canonical AU string (``1+2+12``) and
  ``action_units`` the raw one.

``skipped`` (columns :data:`SKIPPED_COLUMNS`: dataset, row, subject, sample, reason) lists rows
left out: by the label set (reason ``label excluded: <emotion>``) or, with ``on_error="skip"``,
because of a problem (the reason says which). A subject that loses every row that way loses its
LOSO fold: that is logged as a warning and listed as one more row (``row`` empty, reason
``fold dropped: ...``), so skipping never changes the fold set silently. With ``on_error="fail"``
every row problem is collected into one :class:`merec.io.MerecError`.
"""

from __future__ import annotations

from merec.datasets.aus import format_aus, parse_aus
from merec.datasets.formats import FORMATS, load_samples
from merec.datasets.frames import clip_frame_paths, list_frames
from merec.datasets.ids import fold_id
from merec.datasets.labels import LABEL_SETS, label_classes
from merec.datasets.validation import SAMPLE_COLUMNS, SKIPPED_COLUMNS, IngestResult

__all__ = [
    "FORMATS",
    "LABEL_SETS",
    "SAMPLE_COLUMNS",
    "SKIPPED_COLUMNS",
    "IngestResult",
    "clip_frame_paths",
    "fold_id",
    "format_aus",
    "label_classes",
    "list_frames",
    "load_samples",
    "parse_aus",
]
