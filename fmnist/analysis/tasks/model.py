"""``analyze.py task=model ckpt=PATH``: the explanations of a training run, for any checkpoint.

Activations, layer/channel permutation importance, input-region importance, the confusion
matrix, per-class precision/recall/F1 and the most confident mistakes, into one report.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fmnist.analysis.activations import capture_activations, channel_statistics, one_per_class
from fmnist.analysis.importance import (
    IMPORTANCE_HEADER,
    evaluation_subset,
    importance_rows,
    permutation_importance,
    region_importance,
    top_channels,
)
from fmnist.analysis.plots import model_figures as figures
from fmnist.analysis.report import Report
from fmnist.analysis.tasks import TASKS
from fmnist.data import CLASS_NAMES
from fmnist.errors import CheckpointError, ConfigError
from fmnist.runs.config import build
from fmnist.training.module import ClassificationModule

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path | None) -> tuple[ClassificationModule, dict[str, Any]]:
    """The module of a training checkpoint and the datamodule state saved with it.

    Every way this can fail (no file, not a checkpoint, weights that do not fit the model
    config stored in the checkpoint) becomes a ``CheckpointError`` naming the fix.
    """
    if not path:
        raise CheckpointError("task=model needs a checkpoint: pass ckpt=PATH/TO/FILE.ckpt.")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Runs keep theirs in "
            "logs/train/runs/<timestamp>/checkpoints/ (best epoch_*.ckpt and last.ckpt)."
        )
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors come in many types
        raise CheckpointError(
            f"Cannot read {path} as a PyTorch checkpoint ({type(exc).__name__}: {exc}). The "
            "file is truncated or corrupt; use another checkpoint of the run."
        ) from exc
    if not isinstance(contents, dict) or "state_dict" not in contents:
        raise CheckpointError(f"{path} is not a Lightning checkpoint written by train.py.")
    hparams = contents.get("hyper_parameters") or {}
    if not hparams.get("net"):
        raise CheckpointError(
            f"{path} holds no model config (hyper_parameters.net): it was not written by "
            "fmnist's train.py, so the model cannot be rebuilt."
        )
    try:
        module = ClassificationModule.load_from_checkpoint(
            path, map_location="cpu", weights_only=True
        )
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"The weights in {path} do not match its model config {hparams['net']}: "
            f"{str(exc).splitlines()[0]} Use a checkpoint written by train.py, unchanged."
        ) from exc
    module.eval()
    datamodule_state = next(
        (v for k, v in contents.items() if k.endswith("DataModule") and isinstance(v, dict)), {}
    )
    return module, {"state": datamodule_state, **contents.get("datamodule_hyper_parameters", {})}


def _options(cfg: DictConfig) -> dict[str, Any]:
    defaults = {
        "split": "test",
        "samples": 500,
        "n_repeats": 3,
        "share": 0.25,
        "seed": 0,
        "patch": 4,
        "top_k": 8,
        "mistakes": 24,
    }
    given = dict(cfg.get("explain") or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"Unknown explain options {sorted(unknown)}: use {sorted(defaults)}.")
    return {**defaults, **given}


def explain_model(cfg: DictConfig, report: Report) -> None:
    """The ``model`` task (see the module docstring)."""
    options = _options(cfg)
    module, data_info = load_checkpoint(cfg.get("ckpt"))
    net = module.net
    datamodule = build(cfg.data)
    datamodule.setup()
    if data_info.get("state"):  # the normalization the model was trained with
        datamodule.normalize = data_info["state"].get("normalize", datamodule.normalize)
        datamodule.load_state_dict(data_info["state"])
    datamodule.flatten = False  # analysis feeds images; our MLP flattens them itself
    split = datamodule.split(options["split"])
    report.heading(f"Model: {cfg.ckpt}")
    report.text(
        f"`{net.__class__.__name__}` from {module.hparams.net}; split `{options['split']}`."
    )

    # Predictions on the whole split: confusion matrix, per-class table, confident mistakes.
    with torch.inference_mode():
        inputs = datamodule.preprocess(split.images)
        probabilities = torch.cat([net(x).softmax(1) for x in inputs.split(1000)])
    confidence, predicted = probabilities.max(1)
    labels = split.labels
    report.heading("Per-class precision, recall and F1", 3)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels.numpy(), predicted.numpy(), labels=range(len(CLASS_NAMES)), zero_division=0
    )
    rows = [
        [name, f"{100 * p:.2f}", f"{100 * r:.2f}", f"{100 * f:.2f}", int(s)]
        for name, p, r, f, s in zip(CLASS_NAMES, precision, recall, f1, support, strict=True)
    ]
    accuracy = float((predicted == labels).double().mean())
    report.text(f"Accuracy on {len(labels)} images: {100 * accuracy:.2f}%.")
    report.table(["class", "precision %", "recall %", "F1 %", "support"], rows)
    matrix = confusion_matrix(labels.numpy(), predicted.numpy(), labels=range(len(CLASS_NAMES)))
    report.figure(
        figures.confusion_matrix_figure(matrix, CLASS_NAMES), "confusion_matrix", "Confusion matrix"
    )
    wrong = (predicted != labels).nonzero().squeeze(1)
    worst = wrong[confidence[wrong].argsort(descending=True)][: options["mistakes"]]
    report.figure(
        figures.confident_mistakes_grid(
            datamodule.scale(split.images[worst]),
            labels[worst].tolist(),
            predicted[worst].tolist(),
            confidence[worst].tolist(),
            CLASS_NAMES,
        ),
        "confident_mistakes",
        f"The {len(worst)} most confident mistakes",
    )

    # Permutation importance of layers and channels, then input regions.
    index = evaluation_subset(len(labels), options["samples"], options["seed"])
    start = time.perf_counter()
    result = permutation_importance(
        net,
        inputs[index],
        labels[index],
        n_repeats=options["n_repeats"],
        share=options["share"],
        seed=options["seed"],
    )
    seconds = time.perf_counter() - start
    report.heading("Layer and channel permutation importance", 3)
    report.text(
        f"{len(index)} images, {options['n_repeats']} repeats, seed {options['seed']}, "
        f"{seconds:.1f} s. Drops are in percentage points from the unpermuted accuracy "
        f"{100 * result['baseline']['accuracy']:.2f}% (macro F1 "
        f"{100 * result['baseline']['f1_macro']:.2f}%). A channel matters when its mean drop "
        "exceeds two standard deviations over the repeats."
    )
    report.table(IMPORTANCE_HEADER, importance_rows(result))
    report.figure(figures.importance_bars(result), "importance", "Permutation importance per layer")
    (report.output_dir / "importance.json").write_text(json.dumps(result))

    # Activations of one image per class, and each layer's top channels beside their maps.
    shown = one_per_class(labels, 1, options["seed"])
    activations = capture_activations(net, inputs[shown], list(result["layers"]))
    report.heading("Activations", 3)
    stat_rows = []
    for layer, output in activations.items():
        stats = channel_statistics(output)
        mean_zero = sum(stats["zero_share"]) / stats["channels"]
        stat_rows.append([layer, stats["channels"], f"{100 * mean_zero:.1f}", stats["dead"]])
        if output.ndim != 4:
            continue
        titles = [CLASS_NAMES[int(label)] for label in labels[shown]]
        safe = layer.replace(".", "_")
        report.figure(
            figures.feature_map_grid(inputs[shown], output, titles, layer=layer),
            f"activations_{safe}",
            f"Feature maps of {layer}, one image per class",
        )
        channels = top_channels(result["layers"][layer], options["top_k"])
        report.figure(
            figures.top_channels_figure(
                inputs[shown[:4]], output[:4], result["layers"][layer], channels, layer
            ),
            f"top_channels_{safe}",
            f"{layer}: the channels whose permutation costs most, beside their maps",
        )
    report.table(["layer", "channels", "zero outputs %", "dead channels"], stat_rows)

    regions = region_importance(
        net, inputs[index], labels[index], options["patch"], options["n_repeats"], options["seed"]
    )
    report.heading("Input-region importance", 3)
    report.figure(
        figures.region_heatmaps(regions, CLASS_NAMES),
        "region_importance",
        f"Recall drop per class when each {options['patch']}x{options['patch']} patch is permuted",
    )


TASKS["model"] = explain_model
