"""``analyze.py task=baselines``: scikit-learn classifiers on the networks' own data.

Each classifier of conf/task/baselines.yaml is fitted on the data module's training split
(all 55,000 images, or a seeded stratified ``task.samples`` of them), scored on its
validation and test splits, and written like a training run: ``baselines/<name>/``
``metrics.json`` (the same keys) and ``predictions.npz``, so the leaderboard and
``task=compare`` take them as they take trained networks. Features and metrics are in
``fmnist.analysis.baselines``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sklearn.model_selection import train_test_split

from fmnist.analysis import baselines
from fmnist.data import CLASS_NAMES
from fmnist.errors import ConfigError
from fmnist.files import write_json
from fmnist.metrics import VAL_ACC_BEST, classification_report, print_test_report
from fmnist.models.preprocess import Preprocess
from fmnist.plots.compare_figures import accuracy_and_time
from fmnist.results.report import Report
from fmnist.training.load import datamodule_for
from fmnist.training.predictions import PREDICTIONS_FILE, save_predictions

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def training_subset(labels: np.ndarray, samples: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded, stratified subsample of the training split (all when None)."""
    if samples is None or samples >= len(labels):
        return np.arange(len(labels))
    n_classes = len(np.unique(labels))
    if samples < n_classes:
        raise ConfigError(
            f"task.samples={samples} is fewer than the {n_classes} classes: give at least "
            f"{n_classes}, or null for all {len(labels)} training images."
        )
    index, _ = train_test_split(
        np.arange(len(labels)), train_size=samples, stratify=labels, random_state=seed
    )
    return np.sort(index)


class Features:
    """Each split's inputs, preprocessed once and HOG'd once, when a classifier first asks."""

    def __init__(self, cfg: DictConfig, samples: int | None, hog: dict[str, Any]) -> None:
        datamodule = datamodule_for(cfg.data, {})
        preprocess = Preprocess(datamodule.normalize, flatten=True)
        preprocess.set_statistics(*datamodule.statistics)
        splits = {name: datamodule.split(name) for name in SPLITS}
        keep = training_subset(splits["train"].labels.numpy(), samples, int(cfg.seed))
        images = {name: split.images for name, split in splits.items()}
        images["train"] = images["train"][keep]
        self.labels = {name: split.labels.numpy() for name, split in splits.items()}
        self.labels["train"] = self.labels["train"][keep]
        self.normalize, self.hog_options = datamodule.normalize, hog
        start = time.perf_counter()
        self.cache = {"pixels": {n: baselines.preprocessed(images[n], preprocess) for n in SPLITS}}
        self.seconds = {"pixels": time.perf_counter() - start}

    def get(self, kind: str, progress: Progress) -> dict[str, np.ndarray]:
        if kind not in ("pixels", "hog"):
            raise ConfigError(f"features: {kind!r} is not one of 'pixels', 'hog'.")
        if kind not in self.cache:
            pixels = self.cache["pixels"]
            bar = progress.add_task("HOG features", total=sum(len(pixels[n]) for n in SPLITS))
            start = time.perf_counter()
            advance: Callable[[int], None] = lambda n: progress.advance(bar, n)  # noqa: E731
            self.cache[kind] = {
                n: baselines.hog_features(pixels[n], self.hog_options, advance) for n in SPLITS
            }
            self.seconds[kind] = time.perf_counter() - start
            progress.remove_task(bar)
        return self.cache[kind]


def fit_and_score(
    estimator: Any, inputs: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Fit on train, predict val and test; the test report, probabilities and timings."""
    start = time.perf_counter()
    estimator.fit(inputs["train"], labels["train"])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    val_acc = float(np.mean(estimator.predict(inputs["val"]) == labels["val"]))
    predicted = np.asarray(estimator.predict(inputs["test"]), dtype=np.int64)
    probabilities = baselines.class_probabilities(estimator, inputs["test"], predicted)
    return {
        "report": classification_report(
            torch.from_numpy(predicted), torch.from_numpy(labels["test"]), CLASS_NAMES
        ),
        "val_acc": val_acc,
        "predicted": predicted,
        "probabilities": probabilities,
        "fit_s": fit_seconds,
        "predict_s": time.perf_counter() - start,
    }


def baseline_metrics(
    name: str, spec: Any, scored: dict[str, Any], features: Features, seed: int
) -> dict[str, Any]:
    """A training run's metrics.json layout, plus what the baseline was."""
    has_proba = hasattr(spec["estimator"], "predict_proba")
    return {
        "monitor": {"name": "val/acc", "mode": "max", "best": scored["val_acc"]},
        VAL_ACC_BEST: scored["val_acc"],
        "train_time_s": round(scored["fit_s"], 2),
        "parameters": baselines.stored_numbers(spec["estimator"]),
        "seed": seed,
        **scored["report"],
        "baseline": {
            "name": name,
            "estimator": repr(spec["estimator"]),
            "features": spec["features"],
            "normalize": features.normalize,
            "train_images": len(features.labels["train"]),
            "feature_time_s": round(features.seconds[spec["features"]], 2),
            "predict_time_s": round(scored["predict_s"], 2),
            "probabilities": "predict_proba" if has_proba else "one-hot of the predicted class",
        },
    }


def baselines_task(
    cfg: DictConfig,
    report: Report,
    *,
    classifiers: dict[str, Any],
    only: list[str] | None,
    samples: int | None,
    hog: dict[str, Any],
) -> None:
    """The ``baselines`` task (see the module docstring)."""
    unknown = sorted(set(only or ()) - set(classifiers))
    if unknown:
        raise ConfigError(f"task.only: {unknown} not among the baselines {sorted(classifiers)}.")
    chosen = {name: classifiers[name] for name in (only or classifiers)}
    features = Features(cfg, samples, hog)
    results = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns) as progress:
        overall = progress.add_task("baselines", total=len(chosen))
        for name, spec in chosen.items():
            progress.update(overall, description=f"{name}: features")
            inputs = features.get(spec["features"], progress)
            progress.update(overall, description=f"{name}: fit and predict")
            scored = fit_and_score(spec["estimator"], inputs, features.labels)
            metrics = baseline_metrics(name, spec, scored, features, int(cfg.seed))
            folder = report.output_dir / "baselines" / name
            folder.mkdir(parents=True, exist_ok=True)
            write_json(folder / "metrics.json", metrics)
            predictions = {k: scored[k] for k in ("predicted", "probabilities")}
            save_predictions(folder / PREDICTIONS_FILE, {"labels": features.labels["test"],
                                                         **predictions})  # fmt: skip
            progress.console.print(f"{name}: {repr(spec['estimator'])}")
            print_test_report(metrics, title=f"Test metrics ({name})")
            results.append(metrics)
            progress.advance(overall)
    report_baselines(report, results)


def report_baselines(report: Report, results: list[dict[str, Any]]) -> None:
    """One table (scores, size, time per classifier) and a figure of accuracy against time."""
    report.heading("Baselines")
    first = results[0]["baseline"]
    report.text(
        f"Fitted on {first['train_images']:,} training images, scored on the validation split "
        f"and the 10,000 test images; inputs preprocessed as the networks' "
        f"(`data.normalize={first['normalize']}`), HOG computed on those. Times in seconds "
        "(features: once for every classifier using them)."
    )
    rows = []
    for m in results:
        b = m["baseline"]
        rows.append([b["name"], b["features"], f"{100 * m['test/acc']:.2f}",
                     f"{100 * m[VAL_ACC_BEST]:.2f}", f"{100 * m['test/f1_macro']:.2f}",
                     f"{100 * m['test/f1_weighted']:.2f}", f"{m['parameters']:,}",
                     f"{b['feature_time_s']:.1f}", f"{m['train_time_s']:.1f}",
                     f"{b['predict_time_s']:.1f}", f"`{b['estimator']}`"])  # fmt: skip
    report.table(["baseline", "features", "test acc %", "val acc %", "F1 macro %",
                  "F1 weighted %", "parameters", "features s", "fit s", "predict s",
                  "estimator"], rows)  # fmt: skip
    names = [m["baseline"]["name"] for m in results]
    report.figure(
        accuracy_and_time(names, [m["test/acc"] for m in results],
                          [m["train_time_s"] for m in results]),
        "baselines", "Test accuracy and fitting time of each baseline",
    )  # fmt: skip
    if report.writer is not None:
        for name, m in zip(names, results, strict=True):
            report.writer.add_scalar(f"baselines/{name}/test_acc", m["test/acc"])
            report.writer.add_scalar(f"baselines/{name}/fit_s", m["train_time_s"])
