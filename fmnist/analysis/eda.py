"""Data quality and exploratory analysis of image datasets, as plain functions over arrays.

Images are uint8 arrays ``(N, 28, 28)`` (or any ``(N, H, W)``), labels integer arrays
``(N,)``. Every function returns numbers or arrays; figures are drawn in
``fmnist.plots.data_figures`` and the reports are written in ``fmnist.tasks.eda`` and
``fmnist.tasks.pca``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def nan_count(array: np.ndarray) -> int:
    """Number of NaN values (always 0 for integer arrays, which cannot hold NaN)."""
    return int(np.count_nonzero(np.isnan(array)))


def value_range(array: np.ndarray) -> tuple[int, int]:
    """Smallest and largest value."""
    return int(array.min()), int(array.max())


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Images per class, ``(num_classes,)``; labels outside the range are not counted."""
    labels = np.asarray(labels)
    inside = (labels >= 0) & (labels < num_classes)
    return np.bincount(labels[inside], minlength=num_classes)


@dataclass
class Duplicates:
    """Exact duplicate images within split ``a``, within split ``b`` and between them.

    ``groups_a``/``groups_b``: index arrays of images that are byte-identical (one array per
    set of copies, only sets of two or more). ``cross``: pairs ``(index in b, index in a)``
    of images in ``b`` that also occur in ``a`` (one ``a`` index per ``b`` image).
    """

    groups_a: list[np.ndarray] = field(default_factory=list)
    groups_b: list[np.ndarray] = field(default_factory=list)
    cross: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    @staticmethod
    def extra_copies(groups: list[np.ndarray]) -> int:
        """Images that could be removed leaving one of each: sum of (copies - 1)."""
        return int(sum(len(g) - 1 for g in groups))


def _groups_of_equal(keys: np.ndarray) -> list[np.ndarray]:
    """Index arrays of positions holding the same key, for keys occurring at least twice."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1], True])
    return [np.sort(order[s:e]) for s, e in zip(starts[:-1], starts[1:], strict=True) if e - s > 1]


def find_duplicates(images_a: np.ndarray, images_b: np.ndarray) -> Duplicates:
    """Byte-identical images within ``images_a``, within ``images_b`` and between them, by
    sorting each image's bytes as one ``np.void`` key: exact, no hash collisions."""
    n_a = len(images_a)
    rows = np.concatenate([images_a.reshape(n_a, -1), images_b.reshape(len(images_b), -1)])
    keys = rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel()
    group = np.unique(keys, return_inverse=True)[1]
    group_a, group_b = group[:n_a], group[n_a:]
    # For each group id, one index in a that holds it (-1 where none does).
    first_in_a = np.full(group.max() + 1 if len(group) else 0, -1, dtype=np.int64)
    first_in_a[group_a[::-1]] = np.arange(n_a)[::-1]  # the last write wins: the smallest index
    b_in_a = first_in_a[group_b]
    shared = np.flatnonzero(b_in_a >= 0)
    return Duplicates(
        groups_a=_groups_of_equal(group_a),
        groups_b=_groups_of_equal(group_b),
        cross=np.stack([shared, b_in_a[shared]], axis=1),
    )


def intensity_histogram(images: np.ndarray) -> np.ndarray:
    """Number of pixels of each intensity 0..255, ``(256,)``."""
    return np.bincount(images.ravel(), minlength=256)


def zero_share(images: np.ndarray) -> float:
    """Fraction of all pixels that are exactly 0 (pure black background)."""
    return float(np.count_nonzero(images == 0) / images.size)


def random_pixels(shape: tuple[int, int], count: int, seed: int) -> np.ndarray:
    """``count`` distinct seeded pixel locations ``(row, col)`` in an image of ``shape``."""
    flat = np.random.default_rng(seed).choice(shape[0] * shape[1], size=count, replace=False)
    return np.stack(np.unravel_index(np.sort(flat), shape), axis=1)


def pixel_values_by_class(
    images: np.ndarray, labels: np.ndarray, pixels: np.ndarray, num_classes: int
) -> list[list[np.ndarray]]:
    """Intensities at each pixel location, per class: ``result[p][c]`` is a 1-D array."""
    return [
        [images[labels == c, row, col] for c in range(num_classes)] for row, col in pixels.tolist()
    ]


def class_mean_std(
    images: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation image of each class, ``(num_classes, H, W)``
    each, in intensity units 0..255.

    Sums and sums of squares for all classes come from two float64 matrix products with a
    one-hot class matrix: one pass over the data instead of ten masked copies.
    """
    x = torch.from_numpy(images.reshape(len(images), -1)).double()
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels).long(), num_classes).double().T
    counts = one_hot.sum(dim=1, keepdim=True).clamp_min(1)
    means = (one_hot @ x) / counts
    variances = ((one_hot @ x.square()) / counts - means.square()).clamp_min(0)
    shape = (num_classes, *images.shape[1:])
    return means.numpy().reshape(shape), variances.sqrt().numpy().reshape(shape)


def pixel_correlation(images: np.ndarray) -> np.ndarray:
    """Pearson correlation between every pair of pixels, ``(H*W, H*W)`` float64, by one
    centred float32 matrix product (centring keeps float32 accurate); pixels that never
    change (std 0) get correlation 0 off the diagonal and 1 on it."""
    x = torch.from_numpy(images.reshape(len(images), -1)).float()
    x -= x.mean(dim=0, dtype=torch.float64).float()
    cov = (x.T @ x) / max(len(x) - 1, 1)
    std = cov.diagonal().sqrt()
    corr = (cov / torch.outer(std, std)).double()
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    corr.fill_diagonal_(1.0)
    return corr.numpy()


def mean_abs_corr_by_lag(corr: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean |correlation| of pixel pairs ``lag`` apart in the flattened (row-major) image,
    for lag = 0..max_lag. Lag 1 is the horizontal neighbour, lag W (28) the vertical one,
    W-1 and W+1 the diagonal ones."""
    return np.array([np.abs(np.diagonal(corr, lag)).mean() for lag in range(max_lag + 1)])


def correlation_structure(corr: np.ndarray, width: int) -> dict[str, float]:
    """Numbers behind the two things the correlation heatmap shows.

    Diagonal dominance: neighbouring pixels correlate far more than the average pair, and
    most pixels' strongest partner is an immediate neighbour. Periodic row structure: mean
    |corr| peaks again at lags that are multiples of the image width (the pixel directly
    below, two below, ...), above the lags halfway between them.
    """
    n = len(corr)
    by_lag = mean_abs_corr_by_lag(corr, min(3 * width + width // 2, n - 1))
    off_diagonal = np.abs(corr[~np.eye(n, dtype=bool)])
    partner = np.abs(corr - np.eye(n)).argmax(axis=1)
    neighbour_lags = {1, width - 1, width, width + 1}
    strongest_is_neighbour = np.isin(np.abs(partner - np.arange(n)), list(neighbour_lags))
    other_lags = [lag for lag in range(2, 2 * width) if lag not in neighbour_lags]
    half = width // 2
    return {
        "mean_abs_offdiag": float(off_diagonal.mean()),
        "lag_1": float(by_lag[1]),
        "lag_w_minus_1": float(by_lag[width - 1]),
        "lag_w": float(by_lag[width]),
        "lag_w_plus_1": float(by_lag[width + 1]),
        "lag_2w": float(by_lag[2 * width]),
        "lag_3w": float(by_lag[3 * width]),
        "lag_other_below_2w": float(by_lag[other_lags].mean()),
        "lag_half_w": float(by_lag[half]),
        "lag_w_plus_half_w": float(by_lag[width + half]),
        "lag_2w_plus_half_w": float(by_lag[2 * width + half]),
        "share_strongest_partner_is_neighbour": float(strongest_is_neighbour.mean()),
    }


def sample_grid(
    images: np.ndarray, labels: np.ndarray, per_class: int, num_classes: int, seed: int
) -> np.ndarray:
    """Seeded random examples of each class, ``(num_classes, per_class, H, W)``; a class with
    fewer images repeats none and is padded with blank images."""
    rng = np.random.default_rng(seed)
    grid = np.zeros((num_classes, per_class, *images.shape[1:]), dtype=images.dtype)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        grid[c, : len(chosen)] = images[chosen]
    return grid
