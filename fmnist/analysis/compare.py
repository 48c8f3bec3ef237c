"""Is one model really better than another? Plain statistics over saved test predictions.

Two models evaluated on the same test images make *paired* observations.
:func:`paired_bootstrap` (one resample for both) gives an interval on the accuracy difference,
and :func:`mcnemar_exact` tests whether the images only one gets right lean one way; both
measure test-set noise, not what another seed would change. Across seeds, :func:`welch_test`
and :func:`permutation_test` compare groups of runs, and :func:`ensemble_predictions` averages
a group's probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Resamples drawn at once: (batch, n) indices stay near 16 MB for 10,000 test images.
_BOOTSTRAP_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A statistic and its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    seed: int


@dataclass(frozen=True)
class McNemar:
    """Discordant pairs and the exact two-sided p-value (a binomial test with p = 1/2)."""

    only_a: int  # images A gets right and B wrong
    only_b: int  # images B gets right and A wrong
    p_value: float


@dataclass(frozen=True)
class GroupTest:
    """A two-sided test of equal mean accuracy across seeds."""

    statistic: float
    p_value: float


def paired_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Accuracy of B minus accuracy of A, with scipy's paired percentile bootstrap interval
    (``scipy.stats.bootstrap(paired=True)``): resample ``i`` draws
    ``rng.integers(0, n, size=n)`` image indices from ``np.random.default_rng(seed)``, in
    batches that bound the memory."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("correct_a and correct_b must be 1-D and of the same nonzero length.")
    result = stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        batch=max(1, _BOOTSTRAP_ELEMENTS // len(a)),
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Interval(float(b.mean() - a.mean()), float(interval.low), float(interval.high),
                    confidence, n_resamples, seed)  # fmt: skip


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's exact test: of the images exactly one model gets right, is B's share 1/2?"""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return McNemar(0, 0, 1.0)
    p_value = stats.binomtest(only_b, only_a + only_b, 0.5, alternative="two-sided").pvalue
    return McNemar(only_a, only_b, float(p_value))


def per_class_recall(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of each class (NaN for a class with no images)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    support = np.bincount(labels, minlength=n_classes)
    hits = np.bincount(labels[labels == predicted], minlength=n_classes)
    return np.divide(hits, support, out=np.full(len(support), np.nan), where=support > 0)


def ensemble_predictions(probabilities: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of several runs' probabilities, and its predicted classes."""
    mean = np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in probabilities]), axis=0)
    return mean, mean.argmax(1)


def welch_test(a: Sequence[float], b: Sequence[float]) -> GroupTest:
    """Welch's t-test (unequal variances) on two groups' accuracies; needs 2+ runs each."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's test needs at least two runs in each group.")
    result = stats.ttest_ind(b, a, equal_var=False)
    return GroupTest(float(result.statistic), float(result.pvalue))


def permutation_test(a: Sequence[float], b: Sequence[float]) -> GroupTest:
    """Exact permutation test of the difference of mean accuracies, B minus A.

    Every relabelling of the runs into two groups of the same sizes; the p-value is the share
    whose absolute difference is at least the observed one (with 2 + 2 runs it is never below
    1/3). Scipy's own two-sided p doubles the smaller tail instead, which overstates it for
    groups of unequal size.
    """
    x, y = np.asarray(b, float), np.asarray(a, float)
    result = stats.permutation_test(
        (x, y),
        lambda u, v, axis=-1: np.abs(np.mean(u, axis=axis) - np.mean(v, axis=axis)),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative="greater",
        vectorized=True,
    )
    return GroupTest(float(x.mean() - y.mean()), float(result.pvalue))
