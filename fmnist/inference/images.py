"""Classifying people's own images: reading files, making them look like Fashion-MNIST, and
batched prediction. Plain functions; ``fmnist.inference.predict`` is the command-line entry point.

``fmnist.inference.convert`` makes every image a Fashion-MNIST item (light, on black, centred
in 28x28). Files come from anywhere, so each is sized from its header before it is decoded
(arrays capped below; images by ``fmnist.inference.decode``, as the server does), large images
are decoded reduced, and a file that fails is skipped with its reason.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import Tensor

from fmnist.data import CLASS_NAMES, read_idx
from fmnist.errors import CorruptDatasetError, MissingPackageError
from fmnist.files import atomic_write_text, ensure_writable_dir
from fmnist.inference.convert import NOT_SEPARATED, check_invert, convert
from fmnist.inference.decode import decode_image, reason

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
IDX_SUFFIXES = {".idx", ".ubyte", ".gz", ".idx3-ubyte"}

#: The most bytes of pixels one .npy or IDX input may claim (the real train images are 47 MB).
MAX_INPUT_BYTES = 100_000_000


@dataclass
class Inputs:
    """Images ready for the model, where each came from, and the files that were skipped."""

    images: list[np.ndarray] = field(default_factory=list)  # uint8 (28, 28), dark background
    sources: list[str] = field(default_factory=list)  # as in FileImages
    backgrounds: list[str] = field(default_factory=list)  # each tile's Conversion.background
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def _as_uint8(array: np.ndarray) -> np.ndarray:
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


def _read_npy(path: Path) -> np.ndarray:
    """Check the header's dtype and shape before loading: a header claiming 10^9 images
    would otherwise be allocated (and fail with a MemoryError) before a byte is read."""
    with path.open("rb") as f:
        if np.lib.format.read_magic(f) == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        if dtype.hasobject:
            raise ValueError(f"array of {dtype}: give uint8 0-255 or floats in [0, 1]")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > MAX_INPUT_BYTES:
            raise ValueError(
                f"its header claims shape {shape} of {dtype}, {nbytes} bytes, more than the "
                f"limit of {MAX_INPUT_BYTES}: split it into smaller files"
            )
        if nbytes == 0:
            raise ValueError(f"its header claims shape {shape}: it holds no images")
        if os.fstat(f.fileno()).st_size - f.tell() < nbytes:
            raise ValueError(f"shorter than the {nbytes} bytes its header claims: truncated")
        f.seek(0)
        return np.load(f, allow_pickle=False)  # never unpickle objects from a .npy


def source_name(path: Path) -> str:
    """``path`` as text that any CSV, log or terminal takes: bytes that are not valid in the
    file system's encoding (a Latin-1 name on a UTF-8 system) become ``\\xe9`` escapes
    instead of lone surrogates, which fail when written after all the work is done."""
    return os.fsencode(path).decode(sys.getfilesystemencoding(), "backslashreplace")


@dataclass
class FileImages:
    """One file's images and their sources: ``file``, ``file[i]`` in an array or IDX file,
    ``file#k`` for the frames of an animated or multi-page image."""

    images: Sequence[np.ndarray]  # uint8 (H, W) grey or (H, W, 3) RGB each
    sources: list[str]
    left_out: str = ""  # why some of the file's images were not read


def read_file(path: Path) -> FileImages:
    """A file's images, at the size found; raises for unusable files (any exception type)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValueError("does not exist") from None
    if not stat.S_ISREG(mode):  # opening a FIFO waits for a writer forever; /dev/zero never ends
        raise ValueError("not a regular file (a pipe, socket or device): give image files")
    name, suffix = source_name(path), path.suffix.lower()
    if suffix == ".npy":
        stack = _image_stack(_as_uint8(np.asarray(_read_npy(path))))
    elif suffix not in IMAGE_SUFFIXES and (suffix in IDX_SUFFIXES or "idx" in path.name):
        try:
            tensor = read_idx(path, max_bytes=MAX_INPUT_BYTES)
        except CorruptDatasetError as exc:
            raise ValueError(str(exc).split(". ")[0]) from exc
        if tensor.ndim != 3:
            raise ValueError(f"IDX file of shape {tuple(tensor.shape)} holds no images (labels?)")
        stack = tensor.numpy()
    else:
        decoded = decode_image(path)
        frames = decoded.frames
        sources = [f"{name}#{k}" for k in range(len(frames))] if len(frames) > 1 else [name]
        return FileImages(frames, sources, decoded.left_out)
    return FileImages(stack, [f"{name}[{i}]" for i in range(len(stack))])


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as everything in them but folders (recursively, sorted): what
    is not a regular file is listed too, so that it is reported, not silently left out."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if not p.is_dir() and not p.name.startswith(".")
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
    check_invert(invert)
    files = expand_paths(paths)
    inputs = Inputs()
    iterator: Iterable[Path] = files
    if progress and len(files) > 1:
        from rich.progress import track

        iterator = track(files, description="Reading images", transient=True)
    for path in iterator:
        try:
            read = read_file(path)
            converted = [convert(np.asarray(image), invert, trim) for image in read.images]
        except ImportError as exc:  # the install's fault, not the file's: stop and say so
            raise MissingPackageError.from_import(exc, "Reading images") from exc
        except Exception as exc:  # one hostile file must not cost the batch: skip it, say why
            inputs.skipped.append((source_name(path), reason(exc)))
            continue
        inputs.images += [c.tile for c in converted]
        inputs.backgrounds += [c.background for c in converted]
        inputs.sources += read.sources
        if read.left_out:
            inputs.skipped.append((source_name(path), read.left_out))
    return inputs


@dataclass
class Prediction:
    source: str
    label: int
    probability: float
    top: list[tuple[str, float]]  # the k most probable classes, best first
    ood_score: float | None = None  # how unlike the training data (fmnist.inference.ood)
    ood: bool | None = None  # out of distribution: score above the validation threshold
    background: str | None = None  # what the conversion found (convert.Conversion.background)

    @property
    def separated(self) -> bool:
        """False when the conversion could not tell the item from its background."""
        return self.background not in NOT_SEPARATED

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.label]


def to_predictions(
    sources: Sequence[str],
    probabilities: Tensor,
    k: int = 3,
    backgrounds: Sequence[str | None] | None = None,
) -> list[Prediction]:
    top_p, top_i = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    backgrounds = [None] * len(sources) if backgrounds is None else backgrounds
    return [
        Prediction(
            source,
            int(indices[0]),
            float(probs[0]),
            [(CLASS_NAMES[int(i)], float(p)) for p, i in zip(probs, indices, strict=True)],
            background=background,
        )
        for source, probs, indices, background in zip(
            sources, top_p, top_i, backgrounds, strict=True
        )
    ]


def write_csv(predictions: Sequence[Prediction], path: str | Path) -> Path:
    """One row per image: source, class, probability, then the top-k classes and theirs.
    Built in memory and written atomically: an old file stays whole if writing fails."""
    path = Path(path).expanduser()
    ensure_writable_dir(path.parent, "prediction output directory")
    k = max((len(p.top) for p in predictions), default=3)
    header = ["source", "class", "label", "probability"]
    for rank in range(1, k + 1):
        header += [f"top{rank}_class", f"top{rank}_probability"]
    header += ["ood_score", "ood", "background"]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for p in predictions:
        row = [p.source, p.name, p.label, f"{p.probability:.6f}"]
        for name, probability in p.top:
            row += [name, f"{probability:.6f}"]
        row += ["", ""] if p.ood is None else [f"{p.ood_score:.4f}", str(p.ood).lower()]
        row.append(p.background or "")
        writer.writerow(row)
    return atomic_write_text(path, text.getvalue())
