"""Reading uint8 IDX files, the format Fashion-MNIST is published in (tests and the benchmark
write them with ``bench/synthetic.py``)."""

from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor

from fmnist.errors import CorruptDatasetError

#: Number of dimensions -> magic number of a uint8 IDX file.
IDX_MAGIC = {3: 2051, 1: 2049}

#: The most bytes of pixels (or labels) one IDX file may claim. The real train images are
#: 47 MB; a header claiming more is refused before anything is inflated.
MAX_IDX_BYTES = 1 << 30

_CHUNK = 1 << 24  # read in 16 MB pieces straight into the tensor: no second copy of the file

_GET_IT_AGAIN = "Delete it and get it again."


def read_idx(path: str | Path, max_bytes: int = MAX_IDX_BYTES) -> Tensor:
    """Read a uint8 IDX file (``.gz`` or uncompressed) into a tensor, validating its header.

    Hand-written rather than torchvision's ``read_sn3_pascalvincent_tensor`` because that one
    reads no ``.gz`` and fails on a bad file with a bare ``assert``; here every problem
    becomes a ``CorruptDatasetError`` that names the file and the fix. The header is checked
    first and at most one byte more than it claims is read, so a small file that inflates to
    gigabytes (or claims to) costs no more memory than ``max_bytes``.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            shape = _read_shape(f, path, max_bytes)
            return _read_payload(f, path, shape)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise CorruptDatasetError(
            f"Cannot read {path}: {exc}. The file is truncated or not an IDX file; "
            f"{_GET_IT_AGAIN.lower()}"
        ) from exc


def _read_shape(f: BinaryIO, path: Path, max_bytes: int) -> tuple[int, ...]:
    """The shape the header claims, refused when it holds nothing or more than ``max_bytes``."""
    head = f.read(4)
    magic = int.from_bytes(head, "big")
    ndim = magic & 0xFF
    if len(head) == 4 and magic not in IDX_MAGIC.values():
        raise CorruptDatasetError(
            f"{path} has magic number {magic}, expected 2051 (images) or 2049 (labels): it is "
            f"not a uint8 IDX file."
        )
    sizes = f.read(4 * ndim)
    if len(head) < 4 or len(sizes) < 4 * ndim:
        size = len(head) + len(sizes)
        raise CorruptDatasetError(f"{path} is too short to be an IDX file ({size} bytes).")
    shape = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
    nbytes = math.prod(shape)  # a Python int: no overflow, whatever the header says
    if nbytes == 0:
        raise CorruptDatasetError(
            f"{path}: its header claims shape {shape}: no {'images' if ndim == 3 else 'labels'}. "
            f"The file is corrupt; {_GET_IT_AGAIN.lower()}"
        )
    if nbytes > max_bytes:
        raise CorruptDatasetError(
            f"{path}: its header claims shape {shape}, {nbytes} bytes, more than the limit of "
            f"{max_bytes}: the file is corrupt or not Fashion-MNIST. {_GET_IT_AGAIN}"
        )
    return shape


def _read_payload(f: BinaryIO, path: Path, shape: tuple[int, ...]) -> Tensor:
    """Exactly the bytes the header claims, plus a one-byte probe for anything beyond them."""
    out = torch.empty(shape, dtype=torch.uint8)
    view = memoryview(out.numpy()).cast("B")
    got = 0
    while got < len(view):
        n = f.readinto(view[got : got + _CHUNK])
        if not n:
            header = 4 + 4 * len(shape)
            raise CorruptDatasetError(
                f"{path} is {header + got} bytes but its header {list(shape)} needs "
                f"{header + len(view)}: the file is truncated or corrupt. {_GET_IT_AGAIN}"
            )
        got += n
    if f.read(1):
        raise CorruptDatasetError(
            f"{path} holds more than the {len(view)} bytes its header {list(shape)} claims: "
            f"the file is corrupt. {_GET_IT_AGAIN}"
        )
    return out
