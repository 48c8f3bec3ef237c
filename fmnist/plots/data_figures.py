"""Figures of the data analysis (EDA, PCA, t-SNE). Each function takes arrays and returns a
matplotlib Figure with a title, axis labels and class names; the caller saves it."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure


def class_balance(counts_by_split: dict[str, np.ndarray], class_names: Sequence[str]) -> Figure:
    """Grouped bars: images per class in each split."""
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(class_names))
    width = 0.8 / len(counts_by_split)
    for i, (split, counts) in enumerate(counts_by_split.items()):
        bars = ax.bar(x + (i - (len(counts_by_split) - 1) / 2) * width, counts, width, label=split)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, class_names, rotation=30, ha="right")
    ax.set(xlabel="class", ylabel="images", title="Class balance per split")
    ax.legend(title="split")
    return fig


def intensity_histogram(histogram: np.ndarray, zero_share: float) -> Figure:
    """Pixel count per intensity 0..255 on a log scale, the zero share in the title."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    # One stairs artist instead of 256 bars: the same picture, much faster to lay out.
    ax.stairs(histogram, np.arange(len(histogram) + 1) - 0.5, fill=True, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlim(-1, len(histogram))
    ax.set_xlabel("pixel intensity (0 = black background, 255 = white)")
    ax.set_ylabel("pixels (log scale)")
    ax.set_title(f"Pixel intensities of all images ({100 * zero_share:.1f}% of pixels are 0)")
    return fig


def random_pixel_distributions(
    values: list[list[np.ndarray]],
    pixels: np.ndarray,
    mean_image: np.ndarray,
    class_names: Sequence[str],
    bins: int = 16,
) -> Figure:
    """Where the seeded random pixels are, and for each its intensity distribution per class
    (one row per class: the share of that class's images in each intensity bin)."""
    n = len(pixels)
    fig, axes = plt.subplots(
        1, n + 1, figsize=(2.9 * (n + 1) + 1.5, 3.6), layout="constrained", squeeze=False
    )
    axes = axes[0]
    axes[0].imshow(mean_image, cmap="gray")
    for i, (row, col) in enumerate(pixels.tolist()):
        axes[0].plot(col, row, "o", color="tab:red", markersize=6, markerfacecolor="none")
        axes[0].annotate(
            str(i + 1), (col, row), color="tab:red", xytext=(3, 3), textcoords="offset points"
        )
    axes[0].set_title("pixel locations\n(on the mean image)", fontsize=9)
    axes[0].set(xlabel="column", ylabel="row")
    edges = np.linspace(0, 256, bins + 1)
    for i, (ax, per_class) in enumerate(zip(axes[1:], values, strict=True)):
        shares = np.stack(
            [np.histogram(v, edges)[0] / max(len(v), 1) for v in per_class]
        )  # (classes, bins)
        shown = ax.imshow(
            shares,
            aspect="auto",
            cmap="viridis",
            norm=PowerNorm(0.5, vmin=0, vmax=1),  # square root: the rare bins stay visible
            extent=(0, 256, len(class_names) - 0.5, -0.5),
        )
        row, col = pixels[i]
        ax.set_title(f"pixel {i + 1} (row {row}, col {col})", fontsize=9)
        ax.set_xlabel("intensity")
        ax.set_yticks(np.arange(len(class_names)), class_names if i == 0 else [], fontsize=7)
    fig.colorbar(
        shown,
        ax=axes[1:].tolist(),
        label="share of the class's images (square-root scale)",
        shrink=0.9,
    )
    fig.suptitle("Intensity distribution of seeded random pixels, per class")
    return fig


def class_images(
    images: np.ndarray, class_names: Sequence[str], title: str, colorbar_label: str
) -> Figure:
    """One image per class (means or standard deviations) on a shared colour scale, drawn as
    one 2x5 mosaic (one image artist renders much faster than ten subplots)."""
    rows, cols = 2, (len(images) + 1) // 2
    height, width = images.shape[1:]
    strip = 7  # blank rows above each tile for the class name
    tiles = np.full((rows * cols, strip + height, width), np.nan)
    tiles[: len(images), strip:] = images
    mosaic = tiles.reshape(rows, cols, strip + height, width).transpose(0, 2, 1, 3)
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(10, 5))
    shown = ax.imshow(
        mosaic.reshape(rows * (strip + height), cols * width),
        cmap=cmap,
        vmin=0,
        vmax=float(images.max()) or 1.0,
        interpolation="nearest",
    )
    for k, name in enumerate(class_names):
        x, y = (k % cols + 0.5) * width, (k // cols) * (strip + height) + strip / 2
        ax.text(x, y, name, ha="center", va="center", fontsize=9)
    ax.set(xticks=[], yticks=[], title=title)
    fig.colorbar(shown, ax=ax, shrink=0.8, label=colorbar_label)
    return fig


def correlation_matrix(corr: np.ndarray, width: int) -> Figure:
    """The pixel-by-pixel correlation heatmap, with ticks at the start of each image row."""
    fig, ax = plt.subplots(figsize=(6.5, 5.6))
    shown = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ticks = np.arange(0, len(corr), 4 * width)
    for axis_ticks in (ax.set_xticks, ax.set_yticks):
        axis_ticks(ticks, [f"row {t // width}" for t in ticks], fontsize=7)
    ax.set_xlabel("pixel index (row-major, 28 per image row)")
    ax.set_ylabel("pixel index")
    ax.set_title(f"Pearson correlation of all {len(corr)} pixels")
    fig.colorbar(shown, ax=ax, label="correlation")
    return fig


def correlation_by_lag(by_lag: np.ndarray, width: int) -> Figure:
    """Mean |correlation| against the distance of two pixels in the flattened image."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    lags = np.arange(1, len(by_lag))
    ax.plot(lags, by_lag[1:], marker=".", markersize=3)
    for k in range(1, (len(by_lag) - 1) // width + 1):
        ax.axvline(k * width, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel(f"lag in the flattened image (dotted: multiples of {width}, the row length)")
    ax.set_ylabel("mean |correlation|")
    ax.set_title("Pixel correlation against distance: peaks one, two, three rows apart")
    return fig


def sample_grid(grid: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Rows of example images, one row per class, named on the left.

    Drawn as one mosaic image rather than 100 subplots: the same picture, rendered in a
    fraction of the time."""
    n_classes, per_class, height, width = grid.shape
    mosaic = grid.transpose(0, 2, 1, 3).reshape(n_classes * height, per_class * width)
    fig, ax = plt.subplots(figsize=(per_class * 0.75 + 1.5, n_classes * 0.75))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks(np.arange(n_classes) * height + height / 2 - 0.5, class_names)
    ax.set_xticks(np.arange(per_class) * width + width / 2 - 0.5, np.arange(1, per_class + 1))
    for k in range(1, n_classes):
        ax.axhline(k * height - 0.5, color="lightgray", linewidth=0.8)
    for k in range(1, per_class):
        ax.axvline(k * width - 0.5, color="lightgray", linewidth=0.8)
    ax.set(xlabel="example", title="Random examples per class (seeded)")
    return fig


def explained_variance(ratios: dict[str, np.ndarray], show: int = 100) -> Figure:
    """Individual (left, log scale) and cumulative (right) explained variance per
    preprocessing, with the 90% and 95% levels."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, ratio in ratios.items():
        k = np.arange(1, min(show, len(ratio)) + 1)
        left.plot(k, 100 * ratio[: len(k)], marker=".", markersize=3, label=name)
        right.plot(np.arange(1, len(ratio) + 1), 100 * np.cumsum(ratio), label=name)
    left.set(yscale="log", xlabel="principal component", ylabel="explained variance (%)")
    left.set_title(f"Each component (first {show})")
    for level in (90, 95):
        right.axhline(level, color="gray", linestyle=":", linewidth=1)
    right.set(xscale="log", title="Cumulative (dotted: 90% and 95%)")
    right.set(xlabel="number of components (log scale)", ylabel="cumulative explained variance (%)")
    for ax in (left, right):
        ax.legend(title="preprocessing")
    fig.suptitle("PCA explained variance")
    fig.tight_layout()
    return fig


def class_scatter(
    ax: plt.Axes, points: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> None:
    """Scatter ``points`` on ``ax`` coloured by class (small markers, drawn in a fixed order)."""
    for c, name in enumerate(class_names):
        color = plt.get_cmap("tab10").colors[c]
        ax.scatter(*points[labels == c].T, s=2, alpha=0.5, color=color, label=name)


def pca_projection(
    projections: dict[str, np.ndarray],
    labels: np.ndarray,
    class_names: Sequence[str],
    ratios: dict[str, np.ndarray],
    note: str,
) -> Figure:
    """PC1 against PC2 for each preprocessing, coloured by class, one legend."""
    fig, axes = plt.subplots(1, len(projections), figsize=(6 * len(projections), 5), squeeze=False)
    for ax, (name, points) in zip(axes[0], projections.items(), strict=True):
        class_scatter(ax, points, labels, class_names)
        ax.set_xlabel(f"PC1 ({100 * ratios[name][0]:.1f}% of variance)")
        ax.set_ylabel(f"PC2 ({100 * ratios[name][1]:.1f}% of variance)")
        ax.set_title(name)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", markerscale=5, title="class")
    fig.suptitle(f"First two principal components ({note})")
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return fig


def principal_components(
    components: dict[str, np.ndarray], ratios: dict[str, np.ndarray], shape: tuple[int, int]
) -> Figure:
    """The top components as images (red +, blue -), one row per preprocessing."""
    rows, count = len(components), len(next(iter(components.values())))
    fig, axes = plt.subplots(
        rows, count, figsize=(1.4 * count + 1, 1.7 * rows + 0.6), squeeze=False
    )
    for r, (name, comps) in enumerate(components.items()):
        for k, (ax, component) in enumerate(zip(axes[r], comps, strict=True)):
            limit = float(np.abs(component).max()) or 1.0
            ax.imshow(component.reshape(shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"PC{k + 1}\n{100 * ratios[name][k]:.1f}%", fontsize=8)
            ax.set(xticks=[], yticks=[])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("Top principal components as images (red: positive weight, blue: negative)")
    fig.tight_layout()
    return fig


def embedding_map(
    points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str
) -> Figure:
    """A 2-D embedding (t-SNE) coloured by class with a legend."""
    fig, ax = plt.subplots(figsize=(8, 6.5))
    class_scatter(ax, points, labels, class_names)
    ax.set(xlabel="t-SNE dimension 1", ylabel="t-SNE dimension 2", title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), markerscale=5, title="class")
    fig.tight_layout()
    return fig
