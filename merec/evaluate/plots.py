"""Figures of the evaluate stage: the pooled confusion matrix and the mean learning curve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from merec.io import PathLike, atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str, path: PathLike) -> None:
    """Save a confusion-matrix PNG."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 4.0), dpi=120)
    ConfusionMatrixDisplay(matrix, display_labels=list(classes)).plot(ax=axes, colorbar=False, cmap="Blues")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def plot_learning_curve(curve: pd.DataFrame, title: str, path: PathLike) -> None:
    """Save mean (± sd over folds and seeds) loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(8.0, 3.4), dpi=120)
    grouped = curve.groupby("epoch")
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            column = f"{split}_{metric}"
            if curve[column].notna().any():
                mean, sd = grouped[column].mean(), grouped[column].std().fillna(0.0)
                axis.plot(mean.index, mean, color=colour, label=f"{split} (mean)")
                axis.fill_between(mean.index, mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
