"""What each layer computes: its outputs for a fixed set of images, and per-channel statistics."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from fmnist.analysis.stages import network_stages
from fmnist.errors import ConfigError


def conv_block_names(net: nn.Module) -> list[str]:
    """``features.0``, ``features.1``, ...: the default layers to capture."""
    return [s for s in network_stages(net) if s.startswith("features.")] or ["dense"]


def one_per_class(labels: Tensor, per_class: int = 1, seed: int = 0) -> Tensor:
    """Indices of ``per_class`` seeded random samples of each class, ordered by class."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    picked = [order[labels[order] == c][:per_class] for c in labels.unique().tolist()]
    return torch.cat(picked)


@torch.inference_mode()
def capture_activations(
    net: nn.Module, inputs: Tensor, layers: list[str] | None = None
) -> dict[str, Tensor]:
    """The outputs of ``layers`` (default: every conv block) for ``inputs``, via forward hooks.

    Outputs are cloned in the hook: a following in-place ReLU would otherwise change them.
    """
    layers = list(layers) if layers else conv_block_names(net)
    known = dict(net.named_modules())
    unknown = [name for name in layers if name not in known]
    if unknown:
        choices = [name for name in known if name][:40]
        raise ConfigError(f"Unknown layers {unknown}: name modules of the network, e.g. {choices}.")
    captured: dict[str, Tensor] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, args: Any, output: Tensor) -> None:
            captured[name] = output.detach().clone().contiguous()

        return hook

    handles = [known[name].register_forward_hook(hook_for(name)) for name in layers]
    was_training = net.training
    try:
        net.eval()
        net(inputs)
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    return {name: captured[name] for name in layers}


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
