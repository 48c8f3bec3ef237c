"""Every run keeps its test predictions: ``predictions.npz`` in the run directory.

Labels, predicted classes and the (calibrated) probabilities of each test image, in
test-set order, written from the same tensors as the test metrics, so a comparison of two
runs (paired tests, ensembles) needs no model and no re-evaluation.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from torch import Tensor

from fmnist.files import atomic_write_bytes

PREDICTIONS_FILE = "predictions.npz"


def save_predictions(path: str | Path, predictions: dict[str, Tensor]) -> Path:
    """Write ``labels`` (int64), ``predicted`` (int64) and ``probabilities`` (float32)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        labels=predictions["labels"].numpy().astype(np.int64),
        predicted=predictions["predicted"].numpy().astype(np.int64),
        probabilities=predictions["probabilities"].numpy().astype(np.float32),
    )
    return atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``predictions.npz`` (no pickled objects are read)."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in ("labels", "predicted", "probabilities")}
