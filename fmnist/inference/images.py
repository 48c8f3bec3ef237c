"""Classifying people's own images: reading files, making them look like Fashion-MNIST, and
batched prediction. Plain functions; ``fmnist.inference.predict`` is the command-line entry point.

Fashion-MNIST items are light on a black background, centred and filling a 28x28 square.
:func:`to_fashion_mnist` makes every image one by the dataset's own conversion
(``fmnist.inference.convert``): trim to the item, longest edge to 28, sharpen, centre, negate.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from fmnist.data import CLASS_NAMES, read_idx
from fmnist.errors import CorruptDatasetError
from fmnist.inference.convert import fashion_mnist_tile, to_rgb
from fmnist.runs.files import ensure_writable_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
ARRAY_SUFFIXES = {".npy"}
IDX_SUFFIXES = {".idx", ".ubyte", ".gz", ".idx3-ubyte"}


@dataclass
class Inputs:
    """Images ready for the model, where each came from, and the files that were skipped."""

    images: list[np.ndarray] = field(default_factory=list)  # uint8 (28, 28), dark background
    sources: list[str] = field(default_factory=list)  # "file" or "file[i]" for arrays
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def to_fashion_mnist(
    image: np.ndarray, invert: bool | str = "auto", trim: bool = True
) -> np.ndarray:
    """A uint8 image of any size, gray (H, W) or RGB (H, W, 3) -> uint8 (28, 28), light item
    on black, by Fashion-MNIST's own conversion (see ``fmnist.inference.convert``).

    ``invert``: ``"auto"`` inverts light-background images, True/False force it;
    ``trim=False`` keeps the whole frame instead of trimming it to the item.
    """
    return fashion_mnist_tile(image, invert, trim_edges=trim)


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
    """A file's images as uint8 (N, H, W) or, for image files, (1, H, W, 3) RGB; raises
    ValueError/OSError for unusable files."""
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
            return to_rgb(image)[None]  # RGB until the conversion's trim step
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
    paths: Iterable[str | Path],
    invert: bool | str = "auto",
    progress: bool = False,
    trim: bool = True,
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
            converted = [to_fashion_mnist(np.asarray(image), invert, trim) for image in stack]
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
    ood_score: float | None = None  # how unlike the training data (fmnist.inference.ood)
    ood: bool | None = None  # out of distribution: score above the validation threshold

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
    """One row per image: source, class, probability, then the top-k classes and theirs."""
    path = Path(path).expanduser()
    ensure_writable_dir(path.parent, "prediction output directory")
    k = max((len(p.top) for p in predictions), default=3)
    header = ["source", "class", "label", "probability"]
    for rank in range(1, k + 1):
        header += [f"top{rank}_class", f"top{rank}_probability"]
    header += ["ood_score", "ood"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for p in predictions:
            row = [p.source, p.name, p.label, f"{p.probability:.6f}"]
            for name, probability in p.top:
                row += [name, f"{probability:.6f}"]
            row += ["", ""] if p.ood is None else [f"{p.ood_score:.4f}", str(p.ood).lower()]
            writer.writerow(row)
    return path
