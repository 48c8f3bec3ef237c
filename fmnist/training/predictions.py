"""A run's test results, built in one place: ``metrics.json``'s test part from what the test
logged (``trainer.test``'s answer, callbacks' values included) and the module's test
outputs, and ``predictions.npz``: each test image's label, predicted class and calibrated
probabilities, in test-set order, so comparing runs needs no model and no re-evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from fmnist.data import CLASS_NAMES
from fmnist.files import atomic_write_bytes
from fmnist.metrics import RESULT_SCALARS, classification_report

PREDICTIONS_FILE = "predictions.npz"


def run_results(
    logged: Mapping[str, float], outputs: Mapping[str, Tensor]
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The test part of ``metrics.json`` and the arrays of ``predictions.npz``."""
    raw, labels = outputs["raw_logits"], outputs["labels"]
    names = CLASS_NAMES[: raw.shape[1]]
    report = classification_report(outputs["predicted"], labels, names)
    metrics = {name: logged[name] for name in RESULT_SCALARS if name in logged}
    metrics.update(per_class=report["per_class"], confusion_matrix=report["confusion_matrix"])
    probabilities = (raw.double() / logged["temperature"]).softmax(1).float()
    predictions = {"labels": labels.cpu(), "predicted": probabilities.argmax(1).cpu(),
                   "probabilities": probabilities.cpu()}  # fmt: skip
    return metrics, predictions


def save_predictions(path: str | Path, predictions: Mapping[str, Any]) -> Path:
    """Write ``labels``, ``predicted`` (int64) and ``probabilities`` (float32): CPU tensors
    or arrays."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        labels=np.asarray(predictions["labels"]).astype(np.int64),
        predicted=np.asarray(predictions["predicted"]).astype(np.int64),
        probabilities=np.asarray(predictions["probabilities"]).astype(np.float32),
    )
    return atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``predictions.npz`` (no pickled objects are read)."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in ("labels", "predicted", "probabilities")}
