"""Classifying people's own images: reading files, making them look like Fashion-MNIST, and
batched prediction. Plain functions; ``fmnist.inference.predict`` is the command-line entry point.

Fashion-MNIST items are light on a black background, centred and filling a 28x28 square.
Photos are usually dark items on a light background, so :func:`to_fashion_mnist` converts to
grayscale, inverts when the border is light, and resizes keeping the aspect ratio (padding
with background).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from fmnist.data import CLASS_NAMES, IMAGE_SIZE, read_idx
from fmnist.errors import ConfigError, CorruptDatasetError
from fmnist.runs.files import ensure_writable_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
ARRAY_SUFFIXES = {".npy"}
IDX_SUFFIXES = {".idx", ".ubyte", ".gz", ".idx3-ubyte"}
INVERT_CHOICES = ("auto", True, False)


@dataclass
class Inputs:
    """Images ready for the model, where each came from, and the files that were skipped."""

    images: list[np.ndarray] = field(default_factory=list)  # uint8 (28, 28), dark background
    sources: list[str] = field(default_factory=list)  # "file" or "file[i]" for arrays
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def has_light_background(gray: np.ndarray, threshold: float = 127.0) -> bool:
    """True when the image's one-pixel border is on average lighter than ``threshold``."""
    return float(_border(gray).mean()) > threshold


def to_fashion_mnist(gray: np.ndarray, invert: bool | str = "auto") -> np.ndarray:
    """A uint8 grayscale image of any size -> uint8 (28, 28), light item on black.

    ``invert``: ``"auto"`` inverts light-background images, True/False force it.
    """
    if invert not in INVERT_CHOICES:
        raise ConfigError(f"invert={invert!r} must be auto, true or false.")
    if invert is True or (invert == "auto" and has_light_background(gray)):
        gray = 255 - gray
    if gray.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return np.ascontiguousarray(gray)
    # Longest side to 28, centred, padded with the background (the border's median).
    square = ImageOps.pad(
        Image.fromarray(np.ascontiguousarray(gray)),
        (IMAGE_SIZE, IMAGE_SIZE),
        method=Image.Resampling.LANCZOS,
        color=int(np.median(_border(gray))),
    )
    return np.asarray(square, dtype=np.uint8)


def _as_uint8(array: np.ndarray, source: Path) -> np.ndarray:
    """uint8 as is; floats in [0, 1] scaled to 0-255; anything else is an error."""
    if array.dtype == np.uint8:
        return array
    in_range = array.size and array.min() >= 0
    if np.issubdtype(array.dtype, np.floating) and in_range and array.max() <= 1.0:
        return (array * 255).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer) and in_range and array.max() <= 255:
        return array.astype(np.uint8)
    raise ValueError(
        f"array of {array.dtype} with values in [{array.min()}, {array.max()}]: give uint8 "
        "0-255 or floats in [0, 1]"
    )


def _image_stack(array: np.ndarray) -> np.ndarray:
    """(H, W), (N, H, W) or (N, 1, H, W) -> (N, H, W)."""
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"array of shape {array.shape}: give (H, W), (N, H, W) or (N, 1, H, W)")
    return array


def read_file(path: Path) -> np.ndarray:
    """A file's images as uint8 (N, H, W); raises ValueError/OSError for unusable files."""
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        array = np.load(path, allow_pickle=False)  # never unpickle objects from a .npy
        return _image_stack(_as_uint8(np.asarray(array), path))
    if suffix not in IMAGE_SUFFIXES and (suffix in IDX_SUFFIXES or "idx" in path.name):
        try:
            tensor = read_idx(path)
        except CorruptDatasetError as exc:
            raise ValueError(str(exc).split(". ")[0]) from exc
        if tensor.ndim != 3:
            raise ValueError(f"IDX file of shape {tuple(tensor.shape)} holds no images (labels?)")
        return tensor.numpy()
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P"):  # transparency: composite on white
                image = image.convert("RGBA")
                white = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, image)
            return np.asarray(image.convert("L"), dtype=np.uint8)[None]
    except UnidentifiedImageError as exc:
        raise ValueError("not an image PIL can read") from exc


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as their files (recursively, sorted)."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        else:
            files.append(path)
    return files


def load_inputs(
    paths: Iterable[str | Path], invert: bool | str = "auto", progress: bool = False
) -> Inputs:
    """Read every file; unreadable ones are skipped with the reason, the rest are kept."""
    files = expand_paths(paths)
    inputs = Inputs()
    iterator: Iterable[Path] = files
    if progress and len(files) > 1:
        from rich.progress import track

        iterator = track(files, description="Reading images", transient=True)
    for path in iterator:
        if not path.exists():
            inputs.skipped.append((str(path), "does not exist"))
            continue
        try:
            stack = read_file(path)
            converted = [to_fashion_mnist(np.asarray(image), invert) for image in stack]
        except (ValueError, OSError) as exc:
            inputs.skipped.append((str(path), str(exc) or type(exc).__name__))
            continue
        inputs.images += converted
        many = len(converted) > 1 or path.suffix.lower() in ARRAY_SUFFIXES | IDX_SUFFIXES
        inputs.sources += [f"{path}[{i}]" if many else str(path) for i in range(len(converted))]
    return inputs


@dataclass
class Prediction:
    source: str
    label: int
    probability: float
    top: list[tuple[str, float]]  # the k most probable classes, best first

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.label]


def to_predictions(sources: Sequence[str], probabilities: Tensor, k: int = 3) -> list[Prediction]:
    top_p, top_i = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    return [
        Prediction(
            source,
            int(indices[0]),
            float(probs[0]),
            [(CLASS_NAMES[int(i)], float(p)) for p, i in zip(probs, indices, strict=True)],
        )
        for source, probs, indices in zip(sources, top_p, top_i, strict=True)
    ]


def write_csv(predictions: Sequence[Prediction], path: str | Path) -> Path:
    """One row per image: source, class, probability, then the top-k classes and theirs.
    Built in memory and written atomically: an old file stays whole if writing fails."""
    import io  # local: another change owns this module's imports for now

    from fmnist.runs.files import atomic_write_text

    path = Path(path).expanduser()
    ensure_writable_dir(path.parent, "prediction output directory")
    k = max((len(p.top) for p in predictions), default=3)
    header = ["source", "class", "label", "probability"]
    for rank in range(1, k + 1):
        header += [f"top{rank}_class", f"top{rank}_probability"]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for p in predictions:
        row = [p.source, p.name, p.label, f"{p.probability:.6f}"]
        for name, probability in p.top:
            row += [name, f"{probability:.6f}"]
        writer.writerow(row)
    return atomic_write_text(path, text.getvalue())
