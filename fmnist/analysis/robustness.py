"""Accuracy under corruption: a model on Fashion-MNIST-C (``fmnist.data.corruptions``).

Every prediction goes through ``module.predict_proba``, the path of the run's test, so the
clean accuracy here is the checkpoint's test accuracy on the same images. The mean corruption
accuracy weighs every corruption alike: the mean over corruptions of each one's mean over its
severities (flips and turns have one).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fmnist.analysis.compare import per_class_recall
from fmnist.data.batches import EVAL_BATCH_SIZE
from fmnist.data.classes import CLASS_NAMES
from fmnist.data.corruptions import CORRUPTIONS, corrupt, severities

#: Columns of the accuracy table: severities 1-5.
MAX_SEVERITY = max(len(severities(name)) for name in CORRUPTIONS)


def correct(module: Any, images: Tensor, labels: Tensor, batch_size: int) -> Tensor:
    """Whether the model's (calibrated, TTA) top class is each image's label."""
    return module.predict_proba(images, batch_size).argmax(1) == labels


def per_class_accuracy(hits: Tensor, labels: Tensor) -> list[float]:
    """Accuracy on the images of each class (NaN for a class with none)."""
    labels = labels.numpy()
    return per_class_recall(labels, np.where(hits.numpy(), labels, -1), len(CLASS_NAMES)).tolist()


def evaluate_robustness(
    module: Any, images: Tensor, labels: Tensor, seed: int = 0, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, Any]:
    """Clean accuracy, accuracy per corruption and severity, and per class, of raw ``images``
    (uint8, on the CPU) with ``labels``; corrupted with ``seed``."""
    start = time.perf_counter()
    images, labels = images.cpu(), labels.cpu()
    clean = correct(module, images, labels, batch_size)
    accuracy: dict[str, list[float]] = {}
    class_accuracy: dict[str, list[float]] = {}
    for name in CORRUPTIONS:
        hits = [
            correct(module, corrupt(images, name, s, seed), labels, batch_size)
            for s in severities(name)
        ]
        accuracy[name] = [float(h.double().mean()) for h in hits]
        class_accuracy[name] = per_class_accuracy(torch.cat(hits), labels.repeat(len(hits)))
    result = {
        "images": len(labels),
        "seed": seed,
        "clean_acc": float(clean.double().mean()),
        "accuracy": accuracy,
        "class_clean_acc": per_class_accuracy(clean, labels),
        "class_accuracy": class_accuracy,
    }
    result.update(summarize(result))
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Mean accuracy per corruption, their mean, its drop from clean, and each class's worst
    corruption (lowest accuracy over its severities)."""
    corruption_acc = {name: float(np.mean(accs)) for name, accs in result["accuracy"].items()}
    mean = float(np.mean(list(corruption_acc.values())))
    names = list(result["class_accuracy"])
    table = np.array([result["class_accuracy"][name] for name in names])  # (corruptions, classes)
    lowest = np.nan_to_num(table, nan=np.inf).argmin(0)  # a class without images: NaN, never worst
    worst = {
        class_name: {"corruption": names[k], "acc": float(table[k, i]), "clean_acc": clean}
        for i, (class_name, k, clean) in enumerate(
            zip(CLASS_NAMES, lowest, result["class_clean_acc"], strict=True)
        )
    }
    return {
        "corruption_acc": corruption_acc,
        "mean_corruption_acc": mean,
        "drop": result["clean_acc"] - mean,
        "worst_per_class": worst,
    }


def accuracy_table(result: dict[str, Any]) -> np.ndarray:
    """(1 + corruptions, 5) accuracies: the clean row (severity 1 only), then each corruption;
    NaN where a corruption has no such severity."""
    table = np.full((1 + len(result["accuracy"]), MAX_SEVERITY), np.nan)
    table[0, 0] = result["clean_acc"]
    for row, accs in enumerate(result["accuracy"].values(), start=1):
        table[row, : len(accs)] = accs
    return table


def example_grid(images: Tensor, seed: int = 0) -> np.ndarray:
    """(corruptions, images x (1 + 5), 28, 28) on the 0-255 scale: each of ``images`` clean and
    at every severity of every corruption, NaN where a corruption has no such severity."""
    blocks = []
    for name in CORRUPTIONS:
        row = np.full((len(images), 1 + MAX_SEVERITY, *images.shape[-2:]), np.nan)
        row[:, 0] = images.numpy()
        for s in severities(name):
            row[:, s] = corrupt(images, name, s, seed).numpy()
        blocks.append(row.reshape(-1, *images.shape[-2:]))
    return np.stack(blocks)
