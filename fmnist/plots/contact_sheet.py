"""The contact sheet of a prediction: what each image was, what the model saw, what it said."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

#: Images per row of the sheet (each takes a thumbnail, a tile and a bar chart).
PER_ROW = 2


def _bars(ax: plt.Axes, top: Sequence[tuple[str, float]], flagged: bool | None) -> None:
    names = [name for name, _ in top][::-1]
    values = [probability for _, probability in top][::-1]
    colour = "tab:red" if flagged else "tab:blue"
    ax.barh(names, values, color=colour, height=0.6)
    for y, value in enumerate(values):
        ax.text(min(value, 1.0) + 0.02, y, f"{value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.25)
    ax.set_xticks([])
    ax.tick_params(axis="y", labelsize=8, length=0)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def _shorten(text: str, length: int = 18) -> str:
    return text if len(text) <= length else "…" + text[-(length - 1) :]


def _caption(ax: plt.Axes, text: str, frame: str, alarm: bool = False) -> None:
    """A framed image with its caption below (captions of neighbours cannot overlap)."""
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(frame)
    ax.set_xlabel(text, fontsize=7, color="tab:red" if alarm else "black")


def contact_sheet(
    thumbnails: Sequence[np.ndarray],
    tiles: Sequence[np.ndarray],
    tops: Sequence[Sequence[tuple[str, float]]],
    titles: Sequence[str],
    flags: Sequence[bool | None],
) -> Figure:
    """For each image: its thumbnail, the 28x28 tile the model saw, and the top classes as
    bars (red when the image is flagged out of distribution)."""
    n = len(tiles)
    rows = max(1, -(-n // PER_ROW))
    fig, axes = plt.subplots(
        rows,
        3 * PER_ROW,
        figsize=(4.2 * PER_ROW, 1.45 * rows + 0.3),
        gridspec_kw={"width_ratios": [1, 1, 1.6] * PER_ROW},
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        thumb_ax, tile_ax, bar_ax = axes[i // PER_ROW, 3 * (i % PER_ROW) : 3 * (i % PER_ROW) + 3]
        thumbnail = thumbnails[i]
        thumb_ax.imshow(thumbnail, cmap="gray" if thumbnail.ndim == 2 else None, vmin=0, vmax=255)
        tile_ax.imshow(tiles[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        _caption(thumb_ax, _shorten(titles[i]), "lightgray")  # a white photo needs a frame
        flagged = bool(flags[i])
        _caption(tile_ax, "model input, OOD" if flagged else "model input", "black", flagged)
        bar_ax.set_axis_on()
        _bars(bar_ax, tops[i], flags[i])
    return fig
