"""Reading and writing uint8 IDX files, the format Fashion-MNIST is published in."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch
from torch import Tensor

from fmnist.errors import CorruptDatasetError

_IDX_MAGIC = {3: 2051, 1: 2049}  # number of dimensions -> magic number of a uint8 IDX file


def read_idx(path: str | Path) -> Tensor:
    """Read a uint8 IDX file (``.gz`` or uncompressed) into a tensor, validating its header.

    Hand-written rather than torchvision's ``read_sn3_pascalvincent_tensor`` because that one
    reads no ``.gz`` and fails on a bad file with a bare ``assert``; here every problem
    becomes a ``CorruptDatasetError`` that names the file and the fix.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise CorruptDatasetError(
            f"Cannot read {path}: {exc}. The file is truncated or not an IDX file; delete it "
            f"and get it again."
        ) from exc
    if len(data) < 8:
        raise CorruptDatasetError(f"{path} is too short to be an IDX file ({len(data)} bytes).")
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic not in _IDX_MAGIC.values() or magic != _IDX_MAGIC.get(ndim):
        raise CorruptDatasetError(
            f"{path} has magic number {magic}, expected 2051 (images) or 2049 (labels): it is "
            f"not a uint8 IDX file."
        )
    header = 4 + 4 * ndim
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(torch.tensor(shape).prod())
    if len(data) != expected:
        raise CorruptDatasetError(
            f"{path} is {len(data)} bytes but its header {shape} needs {expected}: the file "
            f"is truncated or corrupt. Delete it and get it again."
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).view(*shape)


def write_idx(path: str | Path, array: Tensor) -> Path:
    """Write a uint8 tensor as an IDX file (gzip-compressed when ``path`` ends in .gz).

    The inverse of :func:`read_idx`: used to build small datasets for tests and to hand
    image batches to other tools in the original format.
    """
    path = Path(path)
    array = torch.as_tensor(array)
    if array.dtype != torch.uint8 or array.ndim not in _IDX_MAGIC:
        raise ValueError("write_idx takes uint8 tensors of 1 (labels) or 3 (images) dimensions.")
    header = _IDX_MAGIC[array.ndim].to_bytes(4, "big") + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    payload = header + array.contiguous().numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path
