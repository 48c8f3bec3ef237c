"""Metric names and modes, defined once; the one classification report and the test table.

Every name is the one logged (TensorBoard, ``trainer.callback_metrics``) and the key in
``metrics.json``. ``monitor`` (conf/train.yaml) picks one of :data:`MONITORABLE`; its mode
decides which checkpoint is kept (``conf/callbacks/default.yaml`` asks
``${fmnist.metric_mode:${monitor}}``), what ``train.py`` returns to sweepers, the Optuna
direction and how sweep summaries sort.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fmnist.errors import ConfigError
from fmnist.tables import print_table

#: Logged metric name -> "max" (higher is better) or "min".
MODES: dict[str, str] = {
    "val/acc": "max",
    "val/acc_best": "max",
    "val/loss": "min",
    "val/f1_macro": "max",
    "test/acc": "max",
    "test/f1_macro": "max",
    "test/precision_macro": "max",
    "test/recall_macro": "max",
    "test/precision_weighted": "max",
    "test/recall_weighted": "max",
    "test/f1_weighted": "max",
    # Calibration of the raw probabilities, and after temperature scaling (lower is better).
    "test/ece": "min",
    "test/nll": "min",
    "test/brier": "min",
    "test/ece_calibrated": "min",
    "test/nll_calibrated": "min",
    "test/brier_calibrated": "min",
    # Fashion-MNIST-C (fmnist.analysis.robustness), when callbacks.robustness is enabled.
    "test/mean_corruption_acc": "max",
}
#: The values a stored metric can take: a fraction in [0, 1] (never a percentage) unless it
#: is listed here. Readers of metrics.json (fmnist.results.rundir) check every value.
BOUNDS: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("val/loss", "test/nll", "test/nll_calibrated"), (0.0, math.inf)),
    **dict.fromkeys(("test/brier", "test/brier_calibrated"), (0.0, 2.0)),
}
#: Metrics a run can monitor (checkpointing, sweeps): the validation ones.
MONITORABLE = tuple(name for name in MODES if name.startswith("val/"))
VAL_ACC_BEST = "val/acc_best"
MEAN_CORRUPTION_ACC = "test/mean_corruption_acc"
#: TensorBoard's HPARAMS tab: the metrics every run is compared on (logged under hp/).
HPARAM_METRICS = {"hp/val_acc_best": VAL_ACC_BEST, "hp/test_acc": "test/acc"}


def mode_of(name: str) -> str:
    """``"max"`` or ``"min"`` for a monitorable metric; a ``ConfigError`` names the choices."""
    if name not in MONITORABLE:
        raise ConfigError(f"monitor={name!r} is not a logged metric: use one of {MONITORABLE}.")
    return MODES[name]


def direction_of(name: str) -> str:
    """Optuna's word for the mode: ``maximize`` or ``minimize``."""
    return "maximize" if mode_of(name) == "max" else "minimize"


def sort_key(value: float | None, mode: str) -> float:
    """Ascending sort key that puts the best value first and missing ones last."""
    if value is None or math.isnan(value):
        return math.inf
    return -value if mode == "max" else value


#: The order of the printed test table: accuracy, the study's weighted scores, then macro,
#: robustness, then calibration, each before and after temperature scaling.
OVERALL_ORDER = ("test/acc", *(f"test/{score}_{average}" for average in ("weighted", "macro")
                               for score in ("precision", "recall", "f1")), MEAN_CORRUPTION_ACC,
                 *(f"test/{name}{after}" for name in ("ece", "nll", "brier")
                   for after in ("", "_calibrated")))  # fmt: skip
#: The scalars a run's metrics.json takes from what its test logged, in the file's order:
#: the classification scores, the temperature, calibration, robustness.
RESULT_SCALARS = (*sorted(n for n in MODES if n.startswith(("test/acc", "test/precision",
                                                            "test/recall", "test/f1"))),
                  "temperature", *(n for n in MODES if n.startswith(("test/ece", "test/nll",
                                                                     "test/brier"))),
                  MEAN_CORRUPTION_ACC)  # fmt: skip


def classification_report(predicted: Any, labels: Any, class_names: Sequence[str]) -> dict:
    """Accuracy, macro and weighted precision/recall/F1 (scikit-learn's "macro avg" and
    "weighted avg"), per class and the confusion matrix of predicted class indices: the one
    report of a run's test, ``task=model`` and ``task=baselines``. torchmetrics computes it,
    in float32, from the same counts as its metric objects, so the numbers are theirs."""
    from torchmetrics.functional import classification as tm  # base modules load without torch

    n = len(class_names)
    report: dict[str, Any] = {
        "test/acc": float(tm.multiclass_accuracy(predicted, labels, n, average="micro"))
    }
    per_class = {}
    scores = {"precision": tm.multiclass_precision, "recall": tm.multiclass_recall,
              "f1": tm.multiclass_f1_score}  # fmt: skip
    for key, score in scores.items():
        for average in ("macro", "weighted"):
            report[f"test/{key}_{average}"] = float(score(predicted, labels, n, average=average))
        per_class[key] = score(predicted, labels, n, average=None).tolist()
    confusion = tm.multiclass_confusion_matrix(predicted, labels, n)
    report["per_class"] = {
        name: {**{k: v[i] for k, v in per_class.items()}, "support": int(confusion[i].sum())}
        for i, name in enumerate(class_names)
    }
    report["confusion_matrix"] = confusion.tolist()
    return report


def print_test_report(metrics: Mapping[str, Any], title: str = "Test metrics") -> None:
    """Print a run's test metrics (metrics.json's layout) as two tables: overall, per class."""
    overall = [
        [name, f"{metrics[name]:.4f}" if MODES[name] == "min" else f"{100 * metrics[name]:.2f}%"]
        for name in OVERALL_ORDER
        if name in metrics
    ]
    if "temperature" in metrics:
        overall.append(["temperature", f"{metrics['temperature']:.3f}"])
    print_table(title, ["metric", "value"], overall, left={"metric"})
    per_class = [
        [
            name,
            *(f"{100 * row[k]:.2f}%" for k in ("precision", "recall", "f1")),
            str(row["support"]),
        ]
        for name, row in metrics["per_class"].items()
    ]
    print_table("Per class", ["class", "precision", "recall", "f1", "support"], per_class,
                left={"class"})  # fmt: skip
