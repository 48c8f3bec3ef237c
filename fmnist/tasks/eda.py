"""``analyze.py task=eda``: data quality and exploratory figures; and what the data tasks
share (``eda``, ``pca``, ``tsne``; ``task=data`` is eda + pca): the official splits loaded once.

Each data task loads both official splits (70,000 images) through the same data config as
training, computes with ``fmnist.analysis.eda``/``pca``, draws with
``fmnist.plots.data_figures`` and writes what it found into the report. Every number in the
report is computed in the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from omegaconf import DictConfig

from fmnist.analysis import eda
from fmnist.data import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, load_fashion_mnist
from fmnist.plots import data_figures as figures
from fmnist.results.report import Report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Splits:
    """The official splits as NumPy arrays: uint8 images (N, 28, 28), int64 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @cached_property
    def images(self) -> np.ndarray:
        """All 70,000 images, train first."""
        return np.concatenate([self.train_images, self.test_images])

    @cached_property
    def labels(self) -> np.ndarray:
        return np.concatenate([self.train_labels, self.test_labels])

    def by_split(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, images, labels)`` of train, then test: the tables list them in this order."""
        return [
            ("train", self.train_images, self.train_labels),
            ("test", self.test_images, self.test_labels),
        ]


@lru_cache(maxsize=2)
def _load(root: str | None, download: bool, strict: bool, search_system: bool) -> Splits:
    # Cached: `task=data` runs eda and pca in one process and reads the files once.
    raw = load_fashion_mnist(root, download, strict, search_system)
    return Splits(
        *(t.numpy() for t in (raw.train_images, raw.train_labels, raw.test_images, raw.test_labels))
    )


def load_splits(cfg: DictConfig) -> Splits:
    """Both official splits, found and checked as the data config says (shared with training)."""
    data = cfg.data
    return _load(data.root, bool(data.download), bool(data.strict), bool(data.search_system))


def pct(share: float, digits: int = 1) -> str:
    return f"{100 * share:.{digits}f}%"


class Stopwatch:
    """Seconds per step, logged as they finish and summed for the report."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        log.info("%s: %.1f s", step, now - self.last)
        self.last = now

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


def eda_task(
    cfg: DictConfig, report: Report, *, n_random_pixels: int, samples_per_class: int, max_lag: int
) -> None:
    """Data quality checks and exploratory figures on all 70,000 images, one section each."""
    seed = int(cfg.seed)
    watch = Stopwatch()
    data = load_splits(cfg)
    watch.lap("load")
    _data_quality(report, data)
    watch.lap("quality + duplicates")
    _class_balance(report, data)
    _pixel_intensities(report, data)
    watch.lap("histogram")
    _random_pixels(report, data, int(n_random_pixels), seed)
    watch.lap("random pixels")
    _class_images(report, data)
    watch.lap("class images")
    corr = eda.pixel_correlation(data.images)
    watch.lap("correlation matrix")
    _pixel_correlations(report, corr, int(max_lag))
    watch.lap("correlation figures")
    _examples(report, data, int(samples_per_class), seed)
    watch.lap("sample grid")
    report.text(f"EDA computed in {watch.total:.1f} s.")


def _data_quality(report: Report, data: Splits) -> None:
    """Sizes, types, NaN values and value ranges per split, then exact duplicates."""
    report.heading("Data quality")
    rows = []
    for split, images, labels in data.by_split():
        low, high = eda.value_range(images)
        label_low, label_high = eda.value_range(labels)
        rows.append(
            [
                split,
                f"{len(images):,}",
                f"{images.dtype} {images.shape[1]}x{images.shape[2]}",
                eda.nan_count(images) + eda.nan_count(labels),
                f"{label_low}-{label_high}",
                f"{low}-{high}",
            ]
        )
    report.table(["split", "images", "pixels", "NaN values", "labels", "pixel values"], rows)
    duplicates = eda.find_duplicates(data.train_images, data.test_images)
    report.text(
        "Exact duplicates (byte-identical images): "
        f"{len(duplicates.groups_a)} sets of copies within train "
        f"({duplicates.extra_copies(duplicates.groups_a)} redundant images), "
        f"{len(duplicates.groups_b)} within test "
        f"({duplicates.extra_copies(duplicates.groups_b)} redundant images), and "
        f"{len(duplicates.cross)} test images that also occur in train."
    )
    examples = [["train", ", ".join(map(str, g))] for g in duplicates.groups_a[:5]]
    examples += [["test", ", ".join(map(str, g))] for g in duplicates.groups_b[:5]]
    examples += [["test / train", f"{b} / {a}"] for b, a in duplicates.cross[:5].tolist()]
    if examples:
        report.text("First duplicates (indices into the official files):")
        report.table(["where", "indices"], examples)


def _class_balance(report: Report, data: Splits) -> None:
    """Images per class in each split, as a table and a bar chart."""
    report.heading("Class balance")
    counts = {split: eda.class_counts(labels, NUM_CLASSES) for split, _, labels in data.by_split()}
    report.table(
        ["class", *counts, "share of train"],
        [
            [
                name,
                *(int(c[i]) for c in counts.values()),
                pct(counts["train"][i] / counts["train"].sum()),
            ]
            for i, name in enumerate(CLASS_NAMES)
        ],
    )
    balanced = all(len(set(c.tolist())) == 1 for c in counts.values())
    report.text(
        "Every class has the same number of images in each split."
        if balanced
        else "The classes are not equally frequent: weigh metrics accordingly."
    )
    report.figure(
        figures.class_balance(counts, CLASS_NAMES),
        "class_balance",
        "Images per class in the official train and test splits",
        "eda/class_balance",
    )


def _pixel_intensities(report: Report, data: Splits) -> None:
    """Share of background (0) and saturated (255) pixels, means, and the histogram."""
    images = data.images
    report.heading("Pixel intensities")
    histogram = eda.intensity_histogram(images)
    zero = eda.zero_share(images)
    levels = np.arange(len(histogram))  # means from the histogram: no pass over the pixels
    report.text(
        f"Of all {images.size:,} pixels, {pct(zero)} are exactly 0 (background) "
        f"(train {pct(eda.zero_share(data.train_images))}, "
        f"test {pct(eda.zero_share(data.test_images))}); "
        f"{pct(histogram[255] / images.size, 2)} are 255. Mean intensity "
        f"{levels @ histogram / histogram.sum():.1f}, mean of the non-zero pixels "
        f"{levels[1:] @ histogram[1:] / histogram[1:].sum():.1f}."
    )
    report.figure(
        figures.intensity_histogram(histogram, zero),
        "intensity_histogram",
        "Histogram of pixel intensities (log scale)",
        "eda/intensity_histogram",
    )


def _random_pixels(report: Report, data: Splits, count: int, seed: int) -> None:
    """Intensities of ``count`` seeded pixel locations per class (still under the
    intensities heading): one pixel already separates some classes."""
    images, labels = data.images, data.labels
    pixels = eda.random_pixels((IMAGE_SIZE, IMAGE_SIZE), count, seed)
    values = eda.pixel_values_by_class(images, labels, pixels, NUM_CLASSES)
    medians = [[float(np.median(v)) for v in per_class] for per_class in values]
    report.text(
        f"{len(pixels)} pixel locations drawn with seed {seed}. Median intensity per class "
        "shows that a single pixel already separates some classes:"
    )
    report.table(
        ["pixel (row, col)", *CLASS_NAMES],
        [
            [f"({r}, {c})", *(f"{m:.0f}" for m in med)]
            for (r, c), med in zip(pixels.tolist(), medians, strict=True)
        ],
    )
    mean_image = images.mean(axis=0)
    report.figure(
        figures.random_pixel_distributions(values, pixels, mean_image, CLASS_NAMES),
        "random_pixels",
        "Intensity distributions of seeded random pixels per class",
        "eda/random_pixels",
    )


def _class_images(report: Report, data: Splits) -> None:
    """Mean and standard-deviation image of each class, and which classes stand out."""
    report.heading("Class mean and standard-deviation images")
    means, stds = eda.class_mean_std(data.images, data.labels, NUM_CLASSES)
    brightest = int(means.mean(axis=(1, 2)).argmax())
    darkest = int(means.mean(axis=(1, 2)).argmin())
    report.text(
        f"Brightest class on average: {CLASS_NAMES[brightest]} "
        f"(mean intensity {means[brightest].mean():.1f}); darkest: {CLASS_NAMES[darkest]} "
        f"({means[darkest].mean():.1f}). The std images show where a class varies: "
        f"largest mean std {CLASS_NAMES[int(stds.mean(axis=(1, 2)).argmax())]}, "
        f"smallest {CLASS_NAMES[int(stds.mean(axis=(1, 2)).argmin())]}."
    )
    report.figure(
        figures.class_images(means, CLASS_NAMES, "Mean image per class", "mean intensity"),
        "class_means",
        "Mean image of each class",
        "eda/class_means",
    )
    report.figure(
        figures.class_images(stds, CLASS_NAMES, "Standard deviation per class", "std of intensity"),
        "class_stds",
        "Per-pixel standard deviation of each class",
        "eda/class_stds",
    )


def _pixel_correlations(report: Report, corr: np.ndarray, max_lag: int) -> None:
    """What the 784x784 correlation matrix shows (neighbours, the 28-pixel rows), and it."""
    report.heading("Pixel correlations")
    s = eda.correlation_structure(corr, IMAGE_SIZE)
    w = IMAGE_SIZE
    report.text(
        f"Diagonal dominance: the mean |correlation| of two different pixels is "
        f"{s['mean_abs_offdiag']:.2f}, but {s['lag_1']:.2f} for horizontal neighbours "
        f"(lag 1) and {s['lag_w']:.2f} for vertical ones (lag {w}); for "
        f"{pct(s['share_strongest_partner_is_neighbour'])} of the pixels the most correlated "
        f"other pixel is an immediate neighbour (lag 1, {w - 1}, {w} or {w + 1}), so the "
        "heatmap is bright along its diagonal."
    )
    report.text(
        f"Periodic {w}-pixel row structure: the mean |correlation| falls with distance within "
        f"a row (lag {w // 2}: {s['lag_half_w']:.2f}; average over lags 2-{2 * w - 1} other "
        f"than the neighbours: {s['lag_other_below_2w']:.2f}) and rises again at every multiple "
        f"of {w}: lag {w} {s['lag_w']:.2f}, {2 * w} {s['lag_2w']:.2f}, {3 * w} {s['lag_3w']:.2f} "
        f"against {s['lag_w_plus_half_w']:.2f} at lag {w + w // 2} and "
        f"{s['lag_2w_plus_half_w']:.2f} at lag {2 * w + w // 2}. Diagonal neighbours (lags "
        f"{w - 1}, {w + 1}): {s['lag_w_minus_1']:.2f}, {s['lag_w_plus_1']:.2f}. This is why "
        "the heatmap shows bands parallel to the diagonal every 28 pixels: the image is a 2-D "
        "grid flattened row by row, and pixels one row apart are spatial neighbours."
    )
    report.figure(
        figures.correlation_matrix(corr, w),
        "correlation_matrix",
        "784x784 pixel correlation matrix",
        "eda/correlation_matrix",
    )
    report.figure(
        figures.correlation_by_lag(eda.mean_abs_corr_by_lag(corr, max_lag), w),
        "correlation_by_lag",
        "Mean |correlation| of pixel pairs against their distance in the flattened image",
        "eda/correlation_by_lag",
    )


def _examples(report: Report, data: Splits, per_class: int, seed: int) -> None:
    """A seeded grid of ``per_class`` example images of each class."""
    report.heading("Examples")
    grid = eda.sample_grid(data.images, data.labels, per_class, NUM_CLASSES, seed)
    report.figure(
        figures.sample_grid(grid, CLASS_NAMES),
        "sample_grid",
        f"{grid.shape[1]} random examples per class (seed {seed})",
        "eda/sample_grid",
    )
