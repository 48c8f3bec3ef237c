"""Classical baselines: the features they see, their test metrics, their size.

The baselines see exactly what the networks see: the data module's splits, turned into
inputs by the models' own :class:`~fmnist.models.preprocess.Preprocess` (the training
split's statistics, ``data.normalize``), flattened to 784-vectors; HOG features are computed
on those same preprocessed images. Their metrics use the names and layout of a training
run's ``metrics.json`` (``fmnist.metrics``), so they land in the same tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fmnist.data import CLASS_NAMES
from fmnist.errors import ConfigError
from fmnist.models.preprocess import Preprocess

#: Fitted attributes a prediction reads, counted as a baseline's "parameters".
PREDICTING_ATTRIBUTES = ("coef_", "intercept_", "support_vectors_", "dual_coef_",
                         "components_", "mean_", "scale_", "_fit_X")  # fmt: skip


def preprocessed(images: Tensor, preprocess: Preprocess, batch: int = 10_000) -> np.ndarray:
    """Raw uint8 images -> the models' inputs as float32 NumPy rows (in batches, to bound
    the float64 intermediates)."""
    with torch.no_grad():
        parts = [preprocess(images[i : i + batch]) for i in range(0, len(images), batch)]
    return torch.cat(parts).numpy().astype(np.float32, copy=False)


def hog_features(
    images: np.ndarray,
    options: dict[str, Any],
    advance: Callable[[int], None] | None = None,
) -> np.ndarray:
    """scikit-image's HOG descriptor of each (28, 28) image, one row each; ``advance(n)``
    reports progress every 1,000 images."""
    try:
        from skimage.feature import hog
    except ImportError as exc:
        raise ConfigError(
            "HOG features need scikit-image: pip install -e .[baselines] (or leave the HOG "
            "baseline out, e.g. task.only=[logistic,random_forest,knn,svc_rbf])."
        ) from exc

    images = images.reshape(len(images), 28, 28)
    rows = []
    for start in range(0, len(images), 1000):
        rows += [
            hog(image, feature_vector=True, **options) for image in images[start : start + 1000]
        ]
        if advance is not None:
            advance(min(1000, len(images) - start))
    return np.asarray(rows, dtype=np.float32)


def class_probabilities(estimator: Any, features: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(N, 10) probabilities: ``predict_proba`` where the estimator has one (columns placed by
    ``classes_``, so a subsample missing a class still fits), else one-hot of the answers."""
    probabilities = np.zeros((len(features), len(CLASS_NAMES)), dtype=np.float32)
    if hasattr(estimator, "predict_proba"):
        probabilities[:, estimator.classes_] = estimator.predict_proba(features)
    else:
        probabilities[np.arange(len(features)), predicted] = 1.0
    return probabilities


def stored_numbers(estimator: Any) -> int:
    """How many numbers the fitted estimator reads to predict: weights, support vectors,
    PCA components, the stored training set of k-NN; for trees, a feature and a threshold
    per node and the class values of each leaf."""
    total = 0
    for step in getattr(estimator, "steps", None) or [(None, estimator)]:
        model = step[1]
        for name in PREDICTING_ATTRIBUTES:
            value = getattr(model, name, None)
            if isinstance(value, np.ndarray):
                total += value.size
        for tree in getattr(model, "estimators_", None) or []:
            nodes = tree.tree_
            leaves = int((nodes.children_left == -1).sum())
            total += 2 * nodes.node_count + leaves * int(nodes.n_classes[0])
    return int(total)
