"""``contact_sheet=true``: a PNG of every predicted image beside the tile the model saw and
its top classes, to see at a glance where the conversion or the model went wrong."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist.files import ensure_writable_dir, write_figure
from fmnist.inference.images import Prediction, read_file

log = logging.getLogger(__name__)

#: Longest edge of a thumbnail on the sheet, in pixels.
THUMBNAIL_SIZE = 160
#: ``file[i]`` (the i-th image of an array or IDX file) or ``file#k`` (the k-th frame).
_INDEXED = re.compile(r"^(?P<path>.*)(?:\[(?P<index>\d+)\]|#(?P<frame>\d+))$")


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A small copy of an image (gray or RGB), aspect ratio kept."""
    small = Image.fromarray(np.ascontiguousarray(image))
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return np.asarray(small)


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
        result.append(thumbnail(stack[index] if stack is not None else tile))
    return result


def write_contact_sheet(
    predictions: Sequence[Prediction], tiles: Sequence[np.ndarray], path: str | Path, limit: int
) -> Path:
    """Draw the first ``limit`` predictions and write the PNG atomically."""
    import matplotlib.pyplot as plt

    from fmnist.plots.contact_sheet import contact_sheet

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
    )
    try:
        return write_figure(path, figure, dpi=110, tight=False)
    finally:
        plt.close(figure)
