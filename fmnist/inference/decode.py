"""The one image decoder: a file or the bytes of an HTTP body -> its frames as uint8 RGB arrays
(RGBA where the image is transparent).

Prediction (``fmnist.inference.images``), the contact sheet, the server and its page all read
images through :func:`decode_image`, so the same bytes give the same pixels, and so the same
tile, whichever way they come in. An image's size is checked from its header before a pixel
is decoded (a small file can hold a decompression bomb), and each frame is made 8-bit and
reduced to :data:`WORK_SIDE` before any other full-size copy; docs/photos-and-serving.md
lists the steps.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

#: The most pixels one image, or frame, may have: checked from the header before decoding
#: (a JPEG: at its reduced decoding scale). The server and prediction share it.
MAX_PIXELS = 32_000_000
#: The most frames read from one animated or multi-page image; the rest are reported.
MAX_FRAMES = 100
#: Frames are decoded, or reduced right after decoding, to at most this longest side.
WORK_SIDE = 1024


class ImageTooLargeError(ValueError):
    """An image, or one of its frames, has more pixels than the limit."""


class NotAnImageError(ValueError):
    """Bytes that are not an image PIL can read (or a truncated, broken one)."""


@dataclass
class Decoded:
    """The frames of one image, uint8 (H, W, 3) RGB or (H, W, 4) RGBA each, why some were not
    read, and the pixels decoded (each frame at its size in the file, or JPEG's draft)."""

    frames: list[np.ndarray]
    left_out: str = ""
    pixels: int = 0


def too_many_pixels(pixels: int, limit: int = MAX_PIXELS) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{pixels} pixels, more than the {limit / 10**6:g}-megapixel limit: resize it"
    )


def _check_pixels(image: Image.Image, limit: int) -> None:
    """Refuse an image, or frame, before it is decoded (even PNG's getexif decodes)."""
    width, height = image.size
    if width * height > limit:
        raise too_many_pixels(width * height, limit)


@contextmanager
def _opened(source: bytes | Path, limit: int) -> Iterator[Image.Image]:
    """The image, header only, its size checked. PIL refuses bombs above twice its global
    limit itself (89M pixels); below that, ``limit`` applies, after JPEG's reduced draft.
    PIL raises many types for hostile or truncated bytes, here or while the caller decodes:
    they become :class:`NotAnImageError`."""
    try:
        with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as f:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    image = Image.open(f)
            except Image.DecompressionBombError as exc:
                claimed = re.search(r"(\d+) pixels", str(exc))
                raise (
                    too_many_pixels(int(claimed.group(1)), limit)
                    if claimed
                    else ImageTooLargeError(str(exc))
                ) from exc
            except UnidentifiedImageError as exc:
                raise NotAnImageError("not an image PIL can read") from exc
            with image:
                image.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG: 1/2-1/8 scale; others: no-op
                _check_pixels(image, limit)
                yield image
    except (ImageTooLargeError, NotAnImageError, FileNotFoundError, IsADirectoryError, ImportError):
        raise
    except Exception as exc:
        raise NotAnImageError(reason(exc)) from exc


def _eight_bit(frame: Image.Image) -> Image.Image:
    """A frame in a mode that ``reduce`` and ``convert("RGB")`` take without losing levels
    (PIL's ``convert`` would clip 16-bit grey above 255 to white)."""
    mode = frame.mode
    if mode.startswith("I;16") or mode == "I":  # 16/32-bit grey: the high byte of 16 bits
        levels = np.asarray(frame).astype(np.int64).clip(0, 65535) >> 8
        return Image.fromarray(levels.astype(np.uint8))
    if mode == "F":  # float grey: [0, 1] scaled, anything else clipped to 0-255
        values = np.nan_to_num(np.asarray(frame, dtype=np.float64), nan=0.0)
        if values.size and values.min() >= 0 and values.max() <= 1:
            values = values * 255
        return Image.fromarray(values.clip(0, 255).round().astype(np.uint8))
    if (mode == "P" and "transparency" in frame.info) or mode in ("PA", "La", "RGBa"):
        return frame.convert("RGBA")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return frame
    return frame.convert("RGB")  # 1, P, CMYK, YCbCr, LAB, HSV, ...: reduce() takes none of them


def _upright(rgb: Image.Image, orientation: int | None) -> Image.Image:
    """``ImageOps.exif_transpose`` of the reduced frame, given the original's orientation."""
    if orientation in (None, 1):
        return rgb
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    rgb.info["exif"] = exif.tobytes()
    return ImageOps.exif_transpose(rgb)


def frame_to_rgb(frame: Image.Image, orientation: int | None, limit: int) -> np.ndarray:
    """The current frame as uint8 RGB (H, W, 3), or RGBA (H, W, 4) when it is transparent
    somewhere, longest side <= :data:`WORK_SIDE`, upright (by the first frame's EXIF)."""
    _check_pixels(frame, limit)
    frame = _eight_bit(frame)
    factor = math.ceil(max(frame.size) / WORK_SIDE)
    if factor > 1:
        frame = frame.reduce(factor)  # box average; premultiplied for RGBA and LA
    transparent = frame.mode in ("RGBA", "LA") and frame.getchannel("A").getextrema()[0] < 255
    frame = frame.convert("RGBA" if transparent else "RGB")
    return np.asarray(_upright(frame, orientation), dtype=np.uint8)


def header_pixels(source: bytes | Path, max_pixels: int = MAX_PIXELS) -> int:
    """The pixels the first frame will be decoded at (a JPEG: its draft), from the header
    alone: a request's budget is checked before a pixel is decoded."""
    with _opened(source, max_pixels) as image:
        return image.width * image.height


def decode_image(
    source: bytes | Path,
    max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
    budget: int | None = None,
) -> Decoded:
    """Every frame of an image file or of image bytes, as uint8 RGB(A) arrays (see the
    module's docstring). Raises :class:`ImageTooLargeError` over ``max_pixels`` per frame or
    ``budget`` for all frames together, checked before each frame is decoded, and
    :class:`NotAnImageError` for anything that cannot be read, with PIL's reason."""
    budget = budget if budget is not None else max_frames * max_pixels
    with _opened(source, max_pixels) as image:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        pixels = _spend(image, budget, 0)
        frames = [frame_to_rgb(image, orientation, max_pixels)]
        left_out = ""
        # MPO: a camera JPEG whose extra frames are previews or other views of one photo.
        while image.format != "MPO" and not left_out:
            try:
                image.seek(len(frames))
            except EOFError:
                break
            if len(frames) == max_frames:
                left_out = f"more than {max_frames} frames: only #0-#{max_frames - 1} were read"
            else:
                pixels = _spend(image, budget, pixels)
                frames.append(frame_to_rgb(image, orientation, max_pixels))
    return Decoded(frames, left_out, pixels)


def reason(exc: Exception) -> str:
    """Why a file was skipped: the message, named by its type unless it is a plain one."""
    if isinstance(exc, ValueError | OSError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _spend(frame: Image.Image, budget: int, spent: int) -> int:
    """``spent`` plus the frame's pixels, or :class:`ImageTooLargeError` over ``budget``."""
    total = spent + frame.width * frame.height
    if total > budget:
        raise ImageTooLargeError(
            f"{total} pixels in its frames, more than the {budget} left of the budget: send "
            "fewer or smaller images"
        )
    return total
