"""The classification report of a set of predictions, in the layout of a training run's
test report (``ClassificationModule.test_report``, computed there with torchmetrics): what
the baselines store and ``task=model`` prints."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fmnist.data import CLASS_NAMES
from fmnist.metrics import CLASSIFICATION_SCALARS


def classification_report(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """A training run's test report (``module.test_report``'s layout) from predictions:
    accuracy, macro and weighted precision/recall/F1, per class, confusion matrix."""
    classes = range(len(CLASS_NAMES))
    overall = {"test/acc": float(np.mean(labels == predicted))}
    for name in CLASSIFICATION_SCALARS:
        metric, _, average = name.removeprefix("test/").partition("_")
        if average:
            scores = precision_recall_fscore_support(
                labels, predicted, labels=classes, average=average, zero_division=0
            )
            overall[name] = float(scores[("precision", "recall", "f1").index(metric)])
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(CLASS_NAMES, precision, recall, f1, support, strict=True)
    }
    matrix = confusion_matrix(labels, predicted, labels=classes).tolist()
    return {"overall": overall, "per_class": per_class, "confusion_matrix": matrix}
