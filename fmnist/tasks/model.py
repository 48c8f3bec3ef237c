"""``analyze.py task=model ckpt=PATH``: the explanations of a training run, for any checkpoint.

Activations, layer/channel permutation importance, input-region importance, the confusion
matrix, per-class precision/recall/F1 and the most confident mistakes, into one report.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from omegaconf import DictConfig
from torch import Tensor

from fmnist.analysis.activations import capture_activations, channel_statistics, one_per_class
from fmnist.analysis.importance import (
    IMPORTANCE_HEADER,
    evaluation_subset,
    importance_rows,
    permutation_importance,
    region_importance,
    top_channels,
)
from fmnist.callbacks.outputs import model_inputs
from fmnist.data import CLASS_NAMES
from fmnist.data.pixels import to_unit_range
from fmnist.errors import CheckpointError
from fmnist.files import write_json
from fmnist.metrics import classification_report
from fmnist.plots import model_figures as figures
from fmnist.results.report import Report
from fmnist.training.load import datamodule_for, load_classifier

log = logging.getLogger(__name__)


def explain_model(
    cfg: DictConfig,
    report: Report,
    *,
    split: str,
    samples: int | None,
    n_repeats: int,
    share: float,
    patch: int,
    top_k: int,
    mistakes: int,
) -> None:
    """The ``model`` task (see the module docstring); ``cfg.seed`` seeds every subsample and
    permutation."""
    if not cfg.get("ckpt"):
        raise CheckpointError("task=model needs a checkpoint: pass ckpt=PATH/TO/FILE.ckpt.")
    seed = int(cfg.seed)
    module, settings = load_classifier(cfg.ckpt)
    data = datamodule_for(cfg.data, settings).split(split)
    report.heading(f"Model: {cfg.ckpt}")
    report.text(
        f"`{module.net.__class__.__name__}` from {module.hparams.net}; split "
        f"`{split}`; flip TTA {'on' if module.hparams.tta_flip else 'off'}."
    )
    probabilities = module.predict_proba(data.images)  # the same path as the run's test
    report_predictions(report, data, probabilities, mistakes)
    inputs, labels = model_inputs(module, data.images), data.labels
    index = evaluation_subset(len(labels), samples, seed)
    result = report_importance(
        report, module.net, inputs[index], labels[index], n_repeats, share, seed
    )
    report_activations(report, module.net, inputs, labels, result, top_k, seed)
    report_regions(report, module.net, inputs[index], labels[index], patch, n_repeats, seed)


def report_predictions(report: Report, split: Any, probabilities: Tensor, mistakes: int) -> None:
    """Accuracy, per-class precision/recall/F1, confusion matrix, most confident mistakes."""
    confidence, predicted = probabilities.max(1)
    labels = split.labels
    report.heading("Per-class precision, recall and F1", 3)
    scores = classification_report(predicted, labels, CLASS_NAMES)
    rows = [
        [name, *(f"{100 * row[k]:.2f}" for k in ("precision", "recall", "f1")), row["support"]]
        for name, row in scores["per_class"].items()
    ]
    accuracy = scores["test/acc"]
    report.text(f"Accuracy on {len(labels)} images: {100 * accuracy:.2f}%.")
    report.table(["class", "precision %", "recall %", "F1 %", "support"], rows)
    matrix = np.array(scores["confusion_matrix"])
    write_json(
        report.output_dir / "evaluation.json",
        {"acc": accuracy, "images": len(labels), "confusion_matrix": scores["confusion_matrix"]},
    )
    report.figure(
        figures.confusion_matrix_figure(matrix, CLASS_NAMES), "confusion_matrix", "Confusion matrix"
    )
    wrong = (predicted != labels).nonzero().squeeze(1)
    worst = wrong[confidence[wrong].argsort(descending=True)][:mistakes]
    report.figure(
        figures.confident_mistakes_grid(
            to_unit_range(split.images[worst]),
            labels[worst].tolist(),
            predicted[worst].tolist(),
            confidence[worst].tolist(),
            CLASS_NAMES,
        ),
        "confident_mistakes",
        f"The {len(worst)} most confident mistakes",
    )


def report_importance(
    report: Report,
    net: Any,
    inputs: Tensor,
    labels: Tensor,
    n_repeats: int,
    share: float,
    seed: int,
) -> dict[str, Any]:
    """Permutation importance of layers and channels, as a table, a figure and JSON."""
    start = time.perf_counter()
    result = permutation_importance(
        net, inputs, labels, n_repeats=n_repeats, share=share, seed=seed
    )
    seconds = time.perf_counter() - start
    report.heading("Layer and channel permutation importance", 3)
    report.text(
        f"{len(labels)} images, {n_repeats} repeats, seed {seed}, "
        f"{seconds:.1f} s. Drops are in percentage points from the unpermuted accuracy "
        f"{100 * result['baseline']['accuracy']:.2f}% (macro F1 "
        f"{100 * result['baseline']['f1_macro']:.2f}%). A channel matters when its mean drop "
        "exceeds two standard deviations over the repeats."
    )
    for layer, reason in result["skipped"].items():
        report.text(f"`{layer}` is left out: it {reason}.")
    if result["layers"]:
        report.table(IMPORTANCE_HEADER, importance_rows(result))
        report.figure(
            figures.importance_bars(result), "importance", "Permutation importance per layer"
        )
    write_json(report.output_dir / "importance.json", result)
    return result


def report_activations(
    report: Report,
    net: Any,
    inputs: Tensor,
    labels: Tensor,
    result: dict[str, Any],
    top_k: int,
    seed: int,
) -> None:
    """Feature maps of one image per class, and each layer's top channels beside their maps."""
    shown = one_per_class(labels, 1, seed)
    activations = capture_activations(net, inputs[shown], list(result["layers"]))
    report.heading("Activations", 3)
    stat_rows = []
    titles = [CLASS_NAMES[int(label)] for label in labels[shown]]
    for layer, output in activations.items():
        stats = channel_statistics(output)
        mean_zero = sum(stats["zero_share"]) / stats["channels"]
        stat_rows.append([layer, stats["channels"], f"{100 * mean_zero:.1f}", stats["dead"]])
        if output.ndim != 4:
            continue
        safe = layer.replace(".", "_")
        report.figure(
            figures.feature_map_grid(inputs[shown], output, titles, layer=layer),
            f"activations_{safe}",
            f"Feature maps of {layer}, one image per class",
        )
        channels = top_channels(result["layers"][layer], top_k)
        report.figure(
            figures.top_channels_figure(
                inputs[shown[:4]], output[:4], result["layers"][layer], channels, layer
            ),
            f"top_channels_{safe}",
            f"{layer}: the channels whose permutation costs most, beside their maps",
        )
    report.table(["layer", "channels", "zero outputs %", "dead channels"], stat_rows)


def report_regions(
    report: Report,
    net: Any,
    inputs: Tensor,
    labels: Tensor,
    patch: int,
    n_repeats: int,
    seed: int,
) -> None:
    """Recall drop per class when each input patch is permuted, as one heatmap per class."""
    regions = region_importance(net, inputs, labels, patch, n_repeats, seed)
    report.heading("Input-region importance", 3)
    report.figure(
        figures.region_heatmaps(regions, CLASS_NAMES),
        "region_importance",
        f"Recall drop per class when each {patch}x{patch} patch is permuted",
    )
