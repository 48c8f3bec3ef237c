"""Calibration: how far predicted probabilities are from observed frequencies, and the
temperature that brings them closer.

Temperature scaling (Guo et al., 2017) divides the logits by one scalar fitted on the
validation split by minimizing the negative log-likelihood. It never changes which class is
predicted (a positive scale keeps the argmax) and usually lowers the calibration error of
networks trained with cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

#: Bins of the expected calibration error (the usual 15, as in Guo et al.).
ECE_BINS = 15


def calibration_metrics(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> dict:
    """Expected calibration error (torchmetrics, 15 equal-width bins, L1), mean negative
    log-likelihood and Brier score (mean over images of the squared distance between the
    probability vector and the one-hot label) of ``softmax(logits / temperature)``."""
    scaled = logits.double() / temperature
    probabilities = scaled.softmax(1)
    one_hot = F.one_hot(labels, logits.shape[1]).double()
    ece = multiclass_calibration_error(
        probabilities, labels, num_classes=logits.shape[1], n_bins=ECE_BINS, norm="l1"
    )
    return {
        "ece": float(ece),
        "nll": float(F.cross_entropy(scaled, labels)),
        "brier": float(((probabilities - one_hot) ** 2).sum(1).mean()),
    }


def fit_temperature(logits: Tensor, labels: Tensor, steps: int = 100) -> float:
    """The temperature minimizing the NLL of ``logits`` (validation split) for ``labels``.

    Optimized over log T (so T stays positive) with L-BFGS, in float64: a 1-D convex
    problem that converges in a few iterations.
    """
    # Callers may be inside Lightning's test loop, which runs under inference mode.
    with torch.inference_mode(False), torch.enable_grad():
        logits = logits.detach().double().clone()
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe"
        )

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(logits / log_t.exp(), labels.clone())
            loss.backward()
            return loss

        optimizer.step(closure)
    return float(log_t.detach().exp())
