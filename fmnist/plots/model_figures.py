"""Figures about a trained model: what its layers compute, what matters, how it learned and
where it fails. Each function takes numbers (tensors, lists, dicts) and returns a Figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor


def montage_figure(
    tiles: np.ndarray,
    row_names: Sequence[str],
    col_names: Sequence[str],
    figsize: tuple[float, float],
    fontsize: float,
    cmap: str,
    **imshow: Any,
) -> Figure:
    """Tiles (rows, cols, H, W) as one image, each framed by 2 NaN pixels drawn white, named
    by the ticks. A single ``imshow`` instead of one axes per tile: figures with ~100 axes
    took seconds each to draw, which mattered inside a training run."""
    rows, cols, h, w = tiles.shape
    tile_h, tile_w = h + 4, w + 4
    padded = np.full((rows, cols, tile_h, tile_w), np.nan)
    padded[:, :, 2:-2, 2:-2] = tiles
    montage = padded.transpose(0, 2, 1, 3).reshape(rows * tile_h, cols * tile_w)
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    colors = plt.get_cmap(cmap).with_extremes(bad="white")
    ax.imshow(montage, cmap=colors, interpolation="nearest", **imshow)
    ax.set_frame_on(False)
    ax.set_yticks([tile_h * (r + 0.5) for r in range(rows)], list(row_names), fontsize=fontsize)
    ax.set_xticks([tile_w * (c + 0.5) for c in range(cols)], list(col_names), fontsize=fontsize)
    ax.tick_params(length=0)
    return fig


def _maps_figure(
    images: Tensor, maps: Tensor, channels: Sequence[int], row_names: Sequence[str], col_names
) -> Figure:
    """A row per image: its input, then the maps of ``channels`` resized to 28x28, each tile
    scaled to 0-1."""
    size = images.shape[-1]
    tiles = [images.reshape(len(images), 1, size, size).float()]
    for channel in channels:
        tile = maps[:, channel : channel + 1].float()
        tiles.append(F.interpolate(tile, size=(size, size), mode="nearest"))
    grid = torch.cat(tiles, 1)  # (rows, cols, size, size)
    low, high = grid.amin((2, 3), keepdim=True), grid.amax((2, 3), keepdim=True)
    scaled = ((grid - low) / (high - low).clamp_min(1e-8)).numpy()
    figsize = (0.75 * len(tiles) + 1.2, 0.75 * len(images) + 0.6)
    return montage_figure(scaled, row_names, col_names, figsize, 6, "viridis")


def feature_map_grid(
    images: Tensor,
    activations: Tensor,
    titles: Sequence[str],
    channels: Sequence[int] | None = None,
    layer: str = "",
) -> Figure:
    """One row per image: the input, then the feature maps of ``channels`` (default: first 8),
    each scaled to its own range."""
    channels = list(channels) if channels is not None else list(range(min(8, activations.shape[1])))
    fig = _maps_figure(
        images, activations, channels, titles, ["input"] + [f"ch {c}" for c in channels]
    )
    fig.suptitle(f"Feature maps of {layer}" if layer else "Feature maps", fontsize=9)
    return fig


def importance_bars(result: dict[str, Any], metric: str = "accuracy") -> Figure:
    """Per layer: the joint-share drop and the mean per-channel drop, with std error bars."""
    layers = list(result["layers"])
    joint = [result["layers"][k]["summary"][metric]["joint_drop"] for k in layers]
    joint_std = [result["layers"][k]["summary"][metric]["joint_drop_std"] for k in layers]
    channel_mean = [result["layers"][k]["summary"][metric]["channel_drop_mean"] for k in layers]
    matter = [result["layers"][k]["summary"][metric]["channels_that_matter"] for k in layers]
    width = [result["layers"][k]["channels"] for k in layers]
    share = result["share"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    x = np.arange(len(layers))
    left.bar(x, 100 * np.array(joint), yerr=100 * np.array(joint_std), color="tab:blue")
    left.set_title(f"{metric} drop, {share:.0%} of channels permuted jointly", fontsize=9)
    right.bar(x, 100 * np.array(channel_mean), color="tab:orange")
    right.set_title(f"mean {metric} drop per channel permuted alone", fontsize=9)
    labels = [f"{k}\n{m}/{w} matter" for k, m, w in zip(layers, matter, width, strict=True)]
    for ax in (left, right):
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylabel("drop (percentage points)")
        ax.axhline(0, color="black", lw=0.5)
    fig.suptitle(
        f"Permutation importance ({result['n_samples']} samples, {result['n_repeats']} repeats)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def top_channels_figure(
    images: Tensor,
    activations: Tensor,
    layer_result: dict[str, Any],
    channels: Sequence[int],
    layer: str,
    metric: str = "accuracy",
) -> Figure:
    """The most important channels of a layer, each with its drop, beside its activation maps
    for a few images (rows)."""
    means = layer_result[metric]["importances_mean"]
    stds = layer_result[metric]["importances_std"]
    names = ["input"] + [f"ch {c}\n{100 * means[c]:.1f}±{100 * stds[c]:.1f}" for c in channels]
    fig = _maps_figure(images, activations, channels, [""] * len(images), names)
    fig.suptitle(f"{layer}: top channels by {metric} drop (pp)", fontsize=9)
    return fig


def region_heatmaps(result: dict[str, Any], class_names: Sequence[str]) -> Figure:
    """Per class, the recall drop when each input patch is permuted: where the model looks."""
    maps = 100 * np.array(result["class_heatmaps"])
    fig, axes = plt.subplots(2, (len(class_names) + 1) // 2, figsize=(10, 4.4), squeeze=False)
    vmax = max(float(maps.max()), 1e-6)
    for ax, name, heat in zip(axes.flat, class_names, maps, strict=False):
        image = ax.imshow(heat, cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(name, fontsize=8)
        ax.set(xticks=[], yticks=[])
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="recall drop (pp)")
    fig.suptitle(f"Input-region importance ({result['patch']}x{result['patch']} patches)")
    return fig


def learning_curves(history: dict[str, list[float]]) -> Figure:
    """Train vs validation loss and accuracy per epoch; the final generalisation gap in the
    title (train minus validation accuracy)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    for stage, style in (("train", "-o"), ("val", "-s")):
        for metric, ax in (("loss", loss_ax), ("acc", acc_ax)):
            values = history.get(f"{stage}/{metric}", [])
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=stage, ms=3)
    loss_ax.set_title("loss"), acc_ax.set_title("accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch"), ax.legend()
    gap = generalisation_gap(history)
    if gap is not None:
        fig.suptitle(f"Final generalisation gap: {100 * gap:.2f} pp (train acc - val acc)")
    fig.tight_layout()
    return fig


def generalisation_gap(history: dict[str, list[float]]) -> float | None:
    train, val = history.get("train/acc"), history.get("val/acc")
    return train[-1] - val[-1] if train and val else None


def confusion_matrix_figure(confusion: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Row-normalised confusion matrix (recall on the diagonal), counts kept in the cells."""
    from sklearn.metrics import ConfusionMatrixDisplay

    confusion = np.asarray(confusion)
    normalised = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay(normalised, display_labels=list(class_names)).plot(
        ax=ax, values_format=".2f", cmap="Blues", colorbar=False, xticks_rotation=45
    )
    ax.set_title("Confusion matrix (rows: true class, normalised)")
    fig.tight_layout()
    return fig


def confident_mistakes_grid(
    images: Tensor,
    true: Sequence[int],
    predicted: Sequence[int],
    confidence: Sequence[float],
    class_names: Sequence[str],
    cols: int = 8,
) -> Figure:
    """The misclassified images the model was surest about."""
    rows = max(1, (len(images) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p, conf in zip(axes.flat, images, true, predicted, confidence, strict=False):
        ax.imshow(image.squeeze().numpy(), cmap="gray")
        ax.set_title(f"{class_names[t]}\n→ {class_names[p]} {conf:.0%}", fontsize=6)
    fig.suptitle("Most confident mistakes (true → predicted, confidence)", fontsize=9)
    return fig
