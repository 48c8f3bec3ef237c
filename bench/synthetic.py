"""A tiny, learnable stand-in for Fashion-MNIST, written as the four real IDX ``.gz`` files.

The tests and ``python -m bench.run --tiny`` point ``data.root`` at it, so the real loading,
checking and training code runs in seconds without the 30 MB dataset.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import torch
from torch import Tensor

from fmnist.data.files import FILES
from fmnist.data.idx import IDX_MAGIC

#: Overrides that point a run at a synthetic dataset (add ``data.root=...``): no system
#: directory, no download, no real-size checks, and splits and batches that fit it.
SYNTHETIC_DATA_OVERRIDES = [
    "data.search_system=false",
    "data.download=false",
    "data.strict=false",
    "data.val_size=40",
    "data.batch_size=32",
    "data.eval_batch_size=64",
]


def make_images(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Learnable synthetic images: a bright 6x6 square whose position encodes the class,
    on low noise. A small CNN separates them in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 40, (len(labels), 28, 28), generator=generator, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        row, col = 2 + 5 * (label // 5), 2 + 5 * (label % 5)
        images[i, row : row + 6, col : col + 6] = 230
    return images


def write_synthetic_dataset(
    folder: Path, n_train_per_class: int = 30, n_test_per_class: int = 8
) -> Path:
    """Write the four IDX .gz files with balanced classes, shuffled, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, per_class, seed in (("train", n_train_per_class, 0), ("test", n_test_per_class, 1)):
        labels = torch.arange(10).repeat_interleave(per_class)
        labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
        image_stem, label_stem = FILES[split]
        write_idx(folder / f"{image_stem}.gz", make_images(labels, seed))
        write_idx(folder / f"{label_stem}.gz", labels.to(torch.uint8))
    return folder


def write_idx(path: str | Path, array: Tensor) -> Path:
    """Write a uint8 tensor as an IDX file (gzip-compressed when ``path`` ends in .gz): the
    inverse of ``fmnist.data.read_idx``."""
    path = Path(path)
    array = torch.as_tensor(array)
    if array.dtype != torch.uint8 or array.ndim not in IDX_MAGIC:
        raise ValueError("write_idx takes uint8 tensors of 1 (labels) or 3 (images) dimensions.")
    header = IDX_MAGIC[array.ndim].to_bytes(4, "big") + b"".join(
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
