"""``analyze.py task=robustness ckpt=PATH``: accuracy of a checkpoint on Fashion-MNIST-C.

Every corruption of ``fmnist.data.corruptions`` at every severity over one seeded subsample
of the test set: a table and a heatmap of the accuracies, the mean corruption accuracy and
its drop from clean, each class's worst corruption, a grid of examples, and
``robustness.json`` with every number.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from fmnist.analysis.importance import evaluation_subset
from fmnist.analysis.robustness import (
    MAX_SEVERITY,
    accuracy_table,
    evaluate_robustness,
    example_grid,
)
from fmnist.errors import CheckpointError
from fmnist.files import write_json
from fmnist.plots import robustness_figures as figures
from fmnist.results.report import Report
from fmnist.training.load import datamodule_for, load_classifier

log = logging.getLogger(__name__)


def robustness_task(
    cfg: DictConfig,
    report: Report,
    *,
    split: str,
    samples: int | None,
    batch_size: int,
    examples: int,
) -> None:
    """The ``robustness`` task (see the module docstring); ``cfg.seed`` picks the subsample
    and seeds the corruptions."""
    if not cfg.get("ckpt"):
        raise CheckpointError("task=robustness needs a checkpoint: pass ckpt=PATH/TO/FILE.ckpt.")
    seed = int(cfg.seed)
    module, settings = load_classifier(cfg.ckpt)
    data = datamodule_for(cfg.data, settings).split(split)
    index = evaluation_subset(len(data), samples, seed)
    result = evaluate_robustness(module, data.images[index], data.labels[index], seed, batch_size)
    result.update(checkpoint=str(cfg.ckpt), split=split)
    write_json(report.output_dir / "robustness.json", result)
    report.heading(f"Robustness: {cfg.ckpt}")
    report_summary(report, result)
    report_worst_per_class(report, result)
    shown = data.images[index[:examples]]
    report.figure(
        figures.corruption_examples(
            example_grid(shown, seed),
            list(result["accuracy"]),
            [("clean" if s == 0 else str(s)) for _ in shown for s in range(MAX_SEVERITY + 1)],
        ),
        "corruption_examples",
        "What each corruption does: the clean image, then severities 1-5",
    )
    if report.writer is not None:
        for name in ("clean_acc", "mean_corruption_acc"):
            report.writer.add_scalar(f"robustness/{name}", result[name])
    log.info(
        "Clean %.2f%%, mean corruption accuracy %.2f%% (%d images, %.1f s)",
        100 * result["clean_acc"],
        100 * result["mean_corruption_acc"],
        result["images"],
        result["seconds"],
    )


def report_summary(report: Report, result: dict[str, Any]) -> None:
    """The headline numbers, the accuracy table and its heatmap."""
    report.text(
        f"{result['images']} seeded `{result['split']}` images (seed {result['seed']}), each "
        f"corruption made with that seed; {result['seconds']:.1f} s. Clean accuracy "
        f"{100 * result['clean_acc']:.2f}%, mean corruption accuracy "
        f"{100 * result['mean_corruption_acc']:.2f}% (the mean over the {len(result['accuracy'])} "
        f"corruptions of each one's mean over its severities): a drop of "
        f"{100 * result['drop']:.2f} points."
    )
    table = accuracy_table(result)
    names = ["clean", *result["accuracy"]]
    means = [result["clean_acc"], *result["corruption_acc"].values()]
    rows = [
        [name, *("" if v != v else f"{100 * v:.2f}" for v in row), f"{100 * mean:.2f}"]
        for name, row, mean in zip(names, table, means, strict=True)
    ]
    severity_columns = [f"severity {s} %" for s in range(1, MAX_SEVERITY + 1)]
    report.table(["corruption", *severity_columns, "mean %"], rows)
    report.figure(
        figures.accuracy_heatmap(table, names),
        "robustness_heatmap",
        "Accuracy (%) per corruption and severity",
    )


def report_worst_per_class(report: Report, result: dict[str, Any]) -> None:
    report.heading("Worst corruption per class", 3)
    report.text(
        "Accuracy on each class's images, clean and under the corruption that costs it "
        "most (mean over severities)."
    )
    rows = [
        [name, f"{100 * w['clean_acc']:.2f}", w["corruption"], f"{100 * w['acc']:.2f}"]
        for name, w in result["worst_per_class"].items()
    ]
    report.table(["class", "clean %", "worst corruption", "accuracy under it %"], rows)
