"""AU-graph stage: per LOSO fold, conditional AU co-occurrence over that fold's training samples.

For fold ``f`` (held-out subject ``f``) and AUs ``a_1..a_K`` (``au_graph.aus``),
``adjacency[i, j] = P(a_j | a_i) = #(samples with a_i and a_j) / #(samples with a_i)`` counted over
the samples of every OTHER subject; the diagonal is zero and rows of AUs never seen are zero.
One ``<fold>.npz`` per fold holds ``adjacency`` (K, K) float32, ``counts`` (K, K) int64 (diagonal:
occurrences), ``aus`` (K,), ``train_subjects`` and ``held_out``.

``au_graph.graph`` picks the control graphs that measure what the graph contributes instead of
assuming it: ``identity`` (no edges: every entry 0, the graph convolution sees only self loops),
``uniform`` (every off-diagonal entry the mean of the fold's co-occurrence entries) and
``shuffled`` (the fold's off-diagonal values at random places, a fixed permutation per fold);
``counts`` stay the fold's real counts.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from merec.config import Params
from merec.datasets.aus import parse_aus
from merec.datasets.ids import ALL_SUBJECTS
from merec.datasets.ingest import fitting_rows, read_samples
from merec.errors import MerecError
from merec.io import PathLike, atomic_dir, save_npz

LOG = logging.getLogger("merec.au_graph")


@dataclass(frozen=True)
class AuGraphParams(Params):
    """The ``au_graph`` section: ``aus``, the AU numbers of the graph's nodes, in node order."""

    section = "au_graph"
    aus: tuple[int, ...]
    graph: str


def au_matrix(au_strings: Sequence[str], aus: Sequence[int]) -> np.ndarray:
    """(samples, K) 0/1 occurrence matrix of the listed AUs."""
    index = {au: k for k, au in enumerate(aus)}
    matrix = np.zeros((len(au_strings), len(aus)), dtype=np.int64)
    for row, text in enumerate(au_strings):
        for au in parse_aus(text):
            if au in index:
                matrix[row, index[au]] = 1
    return matrix


def cooccurrence(occurrence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts (K, K) and conditional probabilities P(j | i) with a zero diagonal."""
    counts = occurrence.T @ occurrence
    seen = np.diag(counts).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        adjacency = np.where(seen[:, None] > 0, counts / seen[:, None], 0.0)
    np.fill_diagonal(adjacency, 0.0)
    return counts, adjacency.astype(np.float32)


def control_graph(adjacency: np.ndarray, graph: str, fold: str) -> np.ndarray:
    """The ``au_graph.graph`` variant of a fold's co-occurrence matrix (see the module docstring)."""
    if graph == "cooccurrence":
        return adjacency
    k = len(adjacency)
    off = ~np.eye(k, dtype=bool)
    if graph == "identity":
        return np.zeros_like(adjacency)
    if graph == "uniform":
        out = np.zeros_like(adjacency)
        out[off] = adjacency[off].mean() if k > 1 else 0.0
        return out
    if graph == "shuffled":
        rng = np.random.default_rng(zlib.crc32(fold.encode()))
        out = np.zeros_like(adjacency)
        out[off] = rng.permutation(adjacency[off])
        return out
    raise MerecError(f"au_graph.graph = {graph!r}; use cooccurrence, identity, uniform or shuffled")


def fold_graph(
    samples: pd.DataFrame, held_out_fold: str, aus: Sequence[int], graph: str = "cooccurrence"
) -> dict[str, np.ndarray]:
    """The AU graph of one fold, from the training subjects only."""
    if held_out_fold != ALL_SUBJECTS and held_out_fold not in set(samples["fold"]):
        raise MerecError(f"fold {held_out_fold!r} is not a subject of the samples table")
    train = samples[(samples["fold"] != held_out_fold) & fitting_rows(samples)]  # ALL_SUBJECTS: every subject
    counts, adjacency = cooccurrence(au_matrix(train["aus"].fillna("").astype(str).tolist(), aus))
    adjacency = control_graph(adjacency, graph, held_out_fold)
    return {
        "adjacency": adjacency,
        "counts": counts,
        "aus": np.asarray(aus, dtype=np.int64),
        "train_subjects": np.array(sorted(train["subject"].unique())),
        "held_out": np.array(held_out_fold),
    }


def run(samples_csv: PathLike, output_dir: PathLike, params: AuGraphParams) -> int:
    """Write ``<fold>.npz`` for every fold of the samples table."""
    aus = list(params.aus)
    samples = read_samples(samples_csv)
    folds = sorted(samples["fold"].unique())
    with atomic_dir(output_dir) as tmp:
        for fold in [*folds, ALL_SUBJECTS]:  # and the graph of every subject, for the recogniser of train_all
            save_npz(Path(tmp) / f"{fold}.npz", **fold_graph(samples, fold, aus, params.graph))
    LOG.info("wrote %s AU graphs of %d folds over AUs %s", params.graph, len(folds), list(aus))
    return len(folds)
