"""Principal component analysis and nonlinear maps of the images, as plain functions.

The two preprocessings are the data module's own (``normalize="none"``: pixels scaled to
0-1; ``normalize="per_pixel"``: each pixel standardized with the training split's mean and
std), so the analysis sees what the models see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from fmnist.analysis.baselines import preprocessed
from fmnist.data.pixels import fit_statistics
from fmnist.errors import ConfigError
from fmnist.models.preprocess import Preprocess

#: Preprocessings compared, by the data module's ``normalize`` value, with a readable name.
PREPROCESSINGS = {"none": "0-1 scaled", "per_pixel": "standardized per pixel"}


def preprocess(images: np.ndarray, normalize: str, fit_images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 ``(N, H*W)`` model inputs, preprocessed as the models do with
    statistics fitted on ``fit_images`` (the training split)."""
    if normalize not in PREPROCESSINGS:
        raise ConfigError(
            f"pca.preprocessings holds {normalize!r}: use {' and/or '.join(PREPROCESSINGS)}."
        )
    # The models' own preprocessing, with the same fit on the training split.
    preprocess = Preprocess(normalize, flatten=True)
    preprocess.set_statistics(*fit_statistics(torch.from_numpy(fit_images), normalize))
    return preprocessed(torch.from_numpy(images), preprocess)


def fit_pca(features: np.ndarray, n_components: int | None = None, seed: int = 0) -> PCA:
    """scikit-learn PCA, by the small covariance's eigenvectors when there are more images
    than pixels (the same components as an SVD of the data, faster)."""
    solver = "covariance_eigh" if features.shape[0] > features.shape[1] else "full"
    return PCA(n_components=n_components, svd_solver=solver, random_state=seed).fit(features)


@dataclass
class VarianceSummary:
    """How concentrated the variance is: shares are fractions of the total variance."""

    pc1: float
    first_10: float
    components_90: int
    components_95: int


def variance_summary(explained_variance_ratio: np.ndarray) -> VarianceSummary:
    """PC1's share, the first ten's share, and components needed for 90% and 95%."""
    cumulative = np.cumsum(explained_variance_ratio)

    def components_for(share: float) -> int:
        # Clipped: rounding can leave the full sum a hair below 1.
        return int(min(np.searchsorted(cumulative, share) + 1, len(cumulative)))

    return VarianceSummary(
        pc1=float(explained_variance_ratio[0]),
        first_10=float(cumulative[min(9, len(cumulative) - 1)]),
        components_90=components_for(0.90),
        components_95=components_for(0.95),
    )


def tsne_map(
    features: np.ndarray, seed: int, perplexity: float = 30.0, max_iter: int = 1000
) -> np.ndarray:
    """2-D t-SNE embedding ``(N, 2)`` of ``features`` (PCA-reduced first, as is usual)."""
    perplexity = min(perplexity, (len(features) - 1) / 3)  # t-SNE needs perplexity < N
    return TSNE(
        n_components=2, perplexity=perplexity, max_iter=max_iter, init="pca", random_state=seed
    ).fit_transform(features)
