"""Figures of the robustness evaluation: accuracy per corruption and severity, and what each
corruption does to an image."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


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
    examples: np.ndarray, row_names: Sequence[str], col_names: Sequence[str], pad: int = 2
) -> Figure:
    """A grid of images (rows, columns, H, W) on the 0-255 scale, NaN for none: one row per
    corruption, columns e.g. the clean image and each severity. One ``imshow`` of a montage,
    so the figure draws fast."""
    rows, cols, h, w = examples.shape
    grid = np.pad(
        examples.astype(float), ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=np.nan
    )
    montage = grid.transpose(0, 2, 1, 3).reshape(rows * (h + 2 * pad), cols * (w + 2 * pad))
    fig, ax = plt.subplots(figsize=(0.62 * cols + 1.4, 0.62 * rows + 0.5), layout="constrained")
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    ax.imshow(montage, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    ax.set_frame_on(False)
    tile_h, tile_w = h + 2 * pad, w + 2 * pad
    ax.set_yticks([tile_h * (r + 0.5) for r in range(rows)], list(row_names), fontsize=7)
    ax.set_xticks([tile_w * (c + 0.5) for c in range(cols)], list(col_names), fontsize=7)
    ax.tick_params(length=0)
    return fig
