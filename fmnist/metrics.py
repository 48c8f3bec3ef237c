"""Metric names and modes, defined once, and the test metrics table printed after training.

Every name is the one logged (TensorBoard, ``trainer.callback_metrics``) and the key in
``metrics.json``. ``monitor`` (conf/train.yaml) picks one of :data:`MONITORABLE`; its mode
decides which checkpoint is kept (``conf/callbacks/default.yaml`` asks
``${fmnist.metric_mode:${monitor}}``), what ``train.py`` returns to sweepers, the Optuna
direction and how sweep summaries sort.
"""

from __future__ import annotations

import math
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
#: Metrics a run can monitor (checkpointing, sweeps): the validation ones.
MONITORABLE = tuple(name for name in MODES if name.startswith("val/"))
#: The test scalars, as the test step logs them and metrics.json stores them.
TEST_SCALARS = tuple(name for name in MODES if name.startswith("test/"))
#: The classification scores of the test set: accuracy, precision, recall and F1.
CLASSIFICATION_SCALARS = tuple(
    name
    for name in TEST_SCALARS
    if name.startswith(("test/acc", "test/precision", "test/recall", "test/f1"))
)
#: Calibration scalars, logged and stored beside the classification scores.
CALIBRATION_SCALARS = tuple(
    n for n in TEST_SCALARS if n.split("/")[1].startswith(("ece", "nll", "brier"))
)
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


#: The order of the printed test table: accuracy, the study's weighted scores, then macro.
OVERALL_ORDER = (
    "test/acc",
    "test/precision_weighted",
    "test/recall_weighted",
    "test/f1_weighted",
    "test/precision_macro",
    "test/recall_macro",
    "test/f1_macro",
    "test/mean_corruption_acc",
    "test/ece",
    "test/ece_calibrated",
    "test/nll",
    "test/nll_calibrated",
    "test/brier",
    "test/brier_calibrated",
)


def print_test_report(report: dict[str, Any], title: str = "Test metrics") -> None:
    """Print overall and per-class test metrics as two tables."""
    values = report["overall"]
    overall = [
        [name, f"{values[name]:.4f}" if MODES[name] == "min" else f"{100 * values[name]:.2f}%"]
        for name in OVERALL_ORDER
        if name in values
    ]
    if "temperature" in values:
        overall.append(["temperature", f"{values['temperature']:.3f}"])
    print_table(title, ["metric", "value"], overall, left={"metric"})
    per_class = [
        [
            name,
            *(f"{100 * row[k]:.2f}%" for k in ("precision", "recall", "f1")),
            str(row["support"]),
        ]
        for name, row in report["per_class"].items()
    ]
    print_table("Per class", ["class", "precision", "recall", "f1", "support"], per_class,
                left={"class"})  # fmt: skip
