"""A network as a chain of named stages, so analysis can run "up to layer L" and "after L".

Our models are compositions of their top-level children in registration order: the CNN is
``classifier(dense(pool(features(x))))`` and the MLP ``classifier(dense(x))``. Splitting the
CNN's ``features`` into its conv blocks gives the stages ``features.0, features.1, ...,
pool, dense, classifier``; any layer's output is then a prefix of the chain and the rest of
the forward pass is the suffix. :func:`network_stages` checks on a dummy input that the chain
reproduces ``forward``, so a model that is not such a chain is refused, not mis-analysed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fmnist.errors import ConfigError

#: Children expanded into their own children (the CNN's conv blocks).
EXPANDED = ("features",)


def network_stages(net: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28)) -> list[str]:
    """Names of the stages of ``net``, in forward order (``features.0``, ..., ``classifier``)."""
    names: list[str] = []
    for name, child in net.named_children():
        if name in EXPANDED and isinstance(child, nn.Sequential):
            names += [f"{name}.{i}" for i in range(len(child))]
        else:
            names.append(name)
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        x = torch.zeros(2, *input_shape)
        if not torch.allclose(run_stages(net, names, x), net(x), atol=1e-5):
            raise ConfigError(
                f"{type(net).__name__} is not the chain of its children {names}: layer analysis "
                "needs a network whose forward applies its children in order (like fmnist's CNN "
                "and MLP)."
            )
    net.train(was_training)
    return names


def importance_layers(net: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28)) -> list[str]:
    """The layers whose channels are permuted: every conv block and the dense layer."""
    stages = network_stages(net, input_shape)
    return [s for s in stages if s.startswith("features.")] + (
        ["dense"] if "dense" in stages else []
    )


def run_stages(net: nn.Module, names: list[str], x: Tensor) -> Tensor:
    """Apply the stages ``names`` of ``net`` to ``x`` in order."""
    for name in names:
        x = net.get_submodule(name)(x)
    return x


def split_at(
    net: nn.Module, layer: str, input_shape: tuple[int, ...] = (1, 28, 28)
) -> tuple[list[str], list[str]]:
    """(stages up to and including ``layer``, stages after it)."""
    stages = network_stages(net, input_shape)
    if layer not in stages:
        raise ConfigError(f"Layer {layer!r} is not a stage of the network: use one of {stages}.")
    cut = stages.index(layer) + 1
    return stages[:cut], stages[cut:]
