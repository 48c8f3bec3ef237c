"""Figures comparing models on the same test images (``task=compare``, ``task=baselines``)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def disagreement_grid(
    images: np.ndarray,
    true: Sequence[int],
    answers: tuple[Sequence[int], Sequence[int]],
    names: tuple[str, str],
    class_names: Sequence[str],
    cols: int = 8,
) -> Figure:
    """Test images the two models label differently: the truth and both answers, the right
    one in green."""
    rows = max(1, (len(images) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images, strict=False)):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(class_names[true[i]], fontsize=6, fontweight="bold")
        for row, (answer, letter) in enumerate(zip((a[i] for a in answers), "AB", strict=True)):
            ax.text(0.5, -0.08 - 0.14 * row, f"{letter}: {class_names[answer]}",
                    transform=ax.transAxes, ha="center", va="top", fontsize=5.5,
                    color="green" if answer == true[i] else "red")  # fmt: skip
    fig.suptitle(f"Where they disagree: true class above, A = {names[0]}, B = {names[1]}",
                 fontsize=9)  # fmt: skip
    fig.subplots_adjust(hspace=0.7)
    return fig


def recall_differences(
    recall_a: np.ndarray, recall_b: np.ndarray, names: tuple[str, str], class_names: Sequence[str]
) -> Figure:
    """Per-class recall of B minus A, in percentage points."""
    difference = 100 * (np.asarray(recall_b) - np.asarray(recall_a))
    fig, ax = plt.subplots(figsize=(6.5, 3.2), constrained_layout=True)
    colors = ["tab:green" if d >= 0 else "tab:red" for d in difference]
    ax.bar(range(len(class_names)), difference, color=colors)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(class_names)), class_names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("recall difference (pp)")
    ax.set_title(f"Per-class recall: {names[1]} minus {names[0]}", fontsize=9)
    return fig


def accuracy_and_time(
    names: Sequence[str], accuracy: Sequence[float], seconds: Sequence[float]
) -> Figure:
    """Test accuracy of each classifier, its fitting time written beside the bar."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.2), constrained_layout=True)
    percent = 100 * np.asarray(accuracy)
    ax.barh(range(len(names)), percent, color="tab:blue")
    for row, (value, time_s) in enumerate(zip(percent, seconds, strict=True)):
        ax.text(value + 0.3, row, f"{value:.2f}%  ({time_s:.0f} s fit)", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(max(0.0, percent.min() - 10), min(100.0, percent.max() + 8))
    ax.set_xlabel("test accuracy (%)")
    return fig
