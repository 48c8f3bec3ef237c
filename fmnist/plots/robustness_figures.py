"""Figures of the robustness evaluation: accuracy per corruption and severity, and what each
corruption does to an image."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from fmnist.plots.model_figures import montage_figure


def accuracy_heatmap(
    table: np.ndarray, row_names: Sequence[str], title: str = "Accuracy under corruption"
) -> Figure:
    """Accuracy (0-1, NaN where a corruption has no such severity) as a heatmap, one row per
    corruption and a column per severity, the percentage written in each cell."""
    rows, cols = table.shape
    fig, ax = plt.subplots(figsize=(1.0 * cols + 2.6, 0.34 * rows + 1.2), layout="constrained")
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="white")
    shown = ax.imshow(100 * table, cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for r, c in zip(*np.nonzero(np.isfinite(table)), strict=True):
        value = 100 * table[r, c]
        ax.text(c, r, f"{value:.1f}", ha="center", va="center", fontsize=7)
    ax.set_yticks(range(rows), list(row_names), fontsize=8)
    ax.set_xticks(range(cols), [str(s) for s in range(1, cols + 1)], fontsize=8)
    ax.set_xlabel("severity")
    ax.set_title(title, fontsize=10)
    fig.colorbar(shown, ax=ax, label="accuracy %", shrink=0.8)
    return fig


def corruption_examples(
    examples: np.ndarray, row_names: Sequence[str], col_names: Sequence[str]
) -> Figure:
    """A grid of images (rows, columns, H, W) on the 0-255 scale, NaN for none: one row per
    corruption, columns e.g. the clean image and each severity."""
    rows, cols = examples.shape[:2]
    figsize = (0.62 * cols + 1.4, 0.62 * rows + 0.5)
    return montage_figure(examples, row_names, col_names, figsize, 7, "gray", vmin=0, vmax=255)
