"""What each layer computes: its outputs for a fixed set of images, and per-channel statistics."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from fmnist.analysis.stages import default_layers, layer_outputs


def one_per_class(labels: Tensor, per_class: int = 1, seed: int = 0) -> Tensor:
    """Indices of ``per_class`` seeded random samples of each class, ordered by class."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    picked = [order[labels[order] == c][:per_class] for c in labels.unique().tolist()]
    return torch.cat(picked)


def capture_activations(
    net: nn.Module, inputs: Tensor, layers: list[str] | None = None
) -> dict[str, Tensor]:
    """The outputs of ``layers`` (None: ``stages.default_layers``, e.g. the CNN's conv blocks
    and dense layer) for ``inputs``, via forward hooks; a layer whose output analysis cannot
    picture is left out with one log line."""
    layers = list(layers) if layers is not None else default_layers(net, inputs[:2])
    return layer_outputs(net, inputs, layers)[0]


def channel_statistics(activations: Tensor) -> dict[str, Any]:
    """Per channel (dimension 1): mean activation, share of zero outputs, and the dead
    channels (zero for every sample and position)."""
    per_channel = activations.transpose(0, 1).flatten(1)  # (C, N * H * W)
    zero_share = (per_channel == 0).double().mean(1)
    return {
        "mean": per_channel.double().mean(1).tolist(),
        "zero_share": zero_share.tolist(),
        "dead": int((zero_share == 1).sum()),
        "channels": int(per_channel.shape[0]),
    }
