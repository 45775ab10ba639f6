"""The per-fold AU graph: conditional co-occurrence over the fold's training subjects only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from merec import au_graph
from merec.io import (
    load_npz,
)


def samples_table() -> pd.DataFrame:
    rows = [
        ("a", "1+2"), ("a", "4+7"), ("b", "1+2+5"), ("b", "12"), ("c", "4+15"), ("c", "R12+L14"),
    ]  # fmt: skip
    return pd.DataFrame(
        {"subject": [f"d/{s}" for s, _ in rows], "fold": [f"d-{s}" for s, _ in rows],
         "sample": [f"x{i}" for i in range(len(rows))], "aus": [a for _, a in rows]}
    )  # fmt: skip


def test_au_graph_is_conditional_cooccurrence_without_the_held_out_subject() -> None:
    graph = au_graph.fold_graph(samples_table(), "d-c", [1, 2, 4, 7, 12, 15])
    adjacency = graph["adjacency"]
    # training subjects a and b: AU1 in 2 samples, always with AU2; AU4 once, with AU7
    assert adjacency[0, 1] == 1.0 and adjacency[2, 3] == 1.0
    assert np.all(np.diag(adjacency) == 0)
    assert adjacency[5].sum() == 0  # AU15 only occurs for the held-out subject c
    assert list(graph["train_subjects"]) == ["d/a", "d/b"]
    everyone = au_graph.fold_graph(samples_table(), "d-a", [1, 2, 4, 7, 12, 15])
    assert everyone["adjacency"][4, 5] == 0 and everyone["counts"][5, 5] == 1


def test_au_graph_run_writes_one_file_per_fold(tmp_path) -> None:
    table = tmp_path / "samples.csv"
    samples_table().to_csv(table, index=False)
    assert au_graph.run(table, tmp_path / "graphs", au_graph.AuGraphParams.from_mapping({"aus": [1, 2, 4]})) == 3
    names = sorted(p.name for p in (tmp_path / "graphs").iterdir())
    assert names == ["all-subjects.npz", "d-a.npz", "d-b.npz", "d-c.npz"]  # and every subject's, for train_all
    assert load_npz(tmp_path / "graphs" / "d-a.npz")["adjacency"].shape == (3, 3)
    everyone = load_npz(tmp_path / "graphs" / "all-subjects.npz")
    assert list(everyone["train_subjects"]) == ["d/a", "d/b", "d/c"]


def test_control_graphs_keep_the_shape_and_remove_the_structure() -> None:
    real = au_graph.fold_graph(samples_table(), "d-c", [1, 2, 4, 7, 12, 15])["adjacency"]
    off = ~np.eye(len(real), dtype=bool)
    identity = au_graph.fold_graph(samples_table(), "d-c", [1, 2, 4, 7, 12, 15], "identity")
    assert not identity["adjacency"].any() and identity["counts"].any()
    uniform = au_graph.fold_graph(samples_table(), "d-c", [1, 2, 4, 7, 12, 15], "uniform")["adjacency"]
    assert np.allclose(uniform[off], real[off].mean()) and not np.diag(uniform).any()
    shuffled = au_graph.fold_graph(samples_table(), "d-c", [1, 2, 4, 7, 12, 15], "shuffled")["adjacency"]
    assert sorted(shuffled[off]) == sorted(real[off]) and not np.array_equal(shuffled, real)
    again = au_graph.fold_graph(samples_table(), "d-c", [1, 2, 4, 7, 12, 15], "shuffled")["adjacency"]
    assert np.array_equal(shuffled, again)
