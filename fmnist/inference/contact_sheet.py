"""``contact_sheet=true``: a PNG of every predicted image beside the tile the model saw and
its top classes, to see at a glance where the conversion or the model went wrong."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from fmnist.files import ensure_writable_dir, write_figure
from fmnist.inference.convert import SHORT
from fmnist.inference.images import Prediction, read_file

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: Longest edge of a thumbnail on the sheet, in pixels.
THUMBNAIL_SIZE = 160
#: Images per row of the sheet (each takes a thumbnail, a tile and a bar chart).
PER_ROW = 2
#: ``file[i]`` (the i-th image of an array or IDX file) or ``file#k`` (the k-th frame).
_INDEXED = re.compile(r"^(?P<path>.*)(?:\[(?P<index>\d+)\]|#(?P<frame>\d+))$")


def originals(sources: Sequence[str], tiles: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Thumbnails of the images as they were read: each file is read again, once (a stack
    of an array or IDX file gives its i-th image); the tile stands in if that fails."""
    cache: dict[str, Sequence[np.ndarray] | None] = {}
    result = []
    for source, tile in zip(sources, tiles, strict=True):
        match = _INDEXED.match(source)
        path, index = (
            (match["path"], int(match["index"] or match["frame"])) if match else (source, 0)
        )
        if path not in cache:
            cache.clear()  # sources come file by file: keep one file's images at a time
            try:
                cache[path] = read_file(Path(path)).images
            except Exception as exc:  # the reader's reasons come in any type
                log.warning("Contact sheet: %s could not be read again (%s)", path, exc)
                cache[path] = None
        stack = cache[path]
        small = Image.fromarray(np.ascontiguousarray(stack[index] if stack is not None else tile))
        small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))  # aspect ratio kept
        result.append(np.asarray(small))
    return result


def _bars(ax: Axes, top: Sequence[tuple[str, float]], flagged: bool | None) -> None:
    names = [name for name, _ in top][::-1]
    values = [probability for _, probability in top][::-1]
    colour = "tab:red" if flagged else "tab:blue"
    ax.barh(names, values, color=colour, height=0.6)
    for y, value in enumerate(values):
        ax.text(min(value, 1.0) + 0.02, y, f"{value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.25)
    ax.set_xticks([])
    ax.tick_params(axis="y", labelsize=8, length=0)
    ax.spines[["top", "right", "bottom"]].set_visible(False)


def _caption(ax: Axes, text: str, frame: str, alarm: bool = False) -> None:
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
    notes: Sequence[str | None] | None = None,
) -> Figure:
    """For each image: its thumbnail, the 28x28 tile the model saw, and the top classes as
    bars (red when the image is flagged out of distribution). A ``note`` (e.g. the
    background could not be separated) replaces the tile's caption, in red. A bare
    ``Figure``, not pyplot's: nothing to close, no backend to choose."""
    from matplotlib.figure import Figure

    n = len(tiles)
    rows = max(1, -(-n // PER_ROW))
    fig = Figure(figsize=(4.2 * PER_ROW, 1.45 * rows + 0.3), layout="constrained")
    axes = fig.subplots(
        rows, 3 * PER_ROW, gridspec_kw={"width_ratios": [1, 1, 1.6] * PER_ROW}, squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        thumb_ax, tile_ax, bar_ax = axes[i // PER_ROW, 3 * (i % PER_ROW) : 3 * (i % PER_ROW) + 3]
        small = thumbnails[i]
        thumb_ax.imshow(small, cmap="gray" if small.ndim == 2 else None, vmin=0, vmax=255)
        tile_ax.imshow(tiles[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        title = titles[i] if len(titles[i]) <= 18 else "…" + titles[i][-17:]
        _caption(thumb_ax, title, "lightgray")  # a white photo needs a frame
        flagged = bool(flags[i])
        note = notes[i] if notes is not None else None
        caption = note or ("model input, OOD" if flagged else "model input")
        _caption(tile_ax, caption, "black", flagged or bool(note))
        bar_ax.set_axis_on()
        _bars(bar_ax, tops[i], flags[i])
    return fig


def write_contact_sheet(
    predictions: Sequence[Prediction], tiles: Sequence[np.ndarray], path: str | Path, limit: int
) -> Path:
    """Draw the first ``limit`` predictions and write the PNG atomically."""
    path = Path(path).expanduser()
    ensure_writable_dir(path.parent, "contact sheet directory")
    shown = list(predictions[:limit])
    if len(predictions) > limit:
        log.warning("Contact sheet: the first %d of %d images", limit, len(predictions))
    figure = contact_sheet(
        originals([p.source for p in shown], tiles[: len(shown)]),
        tiles[: len(shown)],
        [p.top for p in shown],
        [Path(p.source).name for p in shown],
        [p.ood for p in shown],
        [SHORT.get(p.background or "") for p in shown],  # why a background was not separated
    )
    return write_figure(path, figure, dpi=110, tight=False)
