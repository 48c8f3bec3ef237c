"""The layers of any ``nn.Module``: named modules, found in the module tree and read or
changed through forward hooks, with no assumption on how ``forward`` joins them. Where
``forward`` really is a chain of the children (our CNN, MLP and ResNet),
:func:`network_stages` gives the chain, so analysis can run the stages before a layer once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor, nn

from fmnist.errors import ConfigError

log = logging.getLogger(__name__)

#: What a layer computes with: convolutions, linear layers, attention.
WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear, nn.MultiheadAttention)


@contextmanager
def evaluating(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode without autograd; its mode restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            yield net
    finally:
        net.train(was_training)


def _weighted(module: nn.Module) -> bool:
    return any(isinstance(m, WEIGHTED) for m in module.modules())


def _is_stack(module: nn.Module) -> bool:
    """A plain ``nn.Sequential``/``nn.ModuleList`` of blocks (children with children of
    their own, like the CNN's ``features``): each block is a layer. ``Linear -> ReLU`` in a
    Sequential is one layer."""
    return type(module) in (nn.Sequential, nn.ModuleList) and any(
        _weighted(child) and next(child.children(), None) is not None for child in module.children()
    )


def _opened(module: nn.Module) -> bool:
    """Analysed through its children: a stack, or a module holding one (``TransformerEncoder``
    holds its ``layers``)."""
    return _is_stack(module) or any(_opened(child) for child in module.children())


def logits_modules(net: nn.Module, example: Tensor) -> list[str]:
    """The modules whose output is the network's output for ``example``, innermost first."""
    outputs: list[tuple[str, object]] = []
    with ExitStack() as hooks, evaluating(net):
        for name, module in list(net.named_modules())[1:]:  # all but the network itself
            record = lambda _, args, out, name=name: outputs.append((name, out))  # noqa: E731
            hooks.enter_context(module.register_forward_hook(record))
        logits = net(example)
    return [
        name
        for name, out in outputs
        if isinstance(out, Tensor) and out.shape == logits.shape and torch.equal(out, logits)
    ]


def logits_layer(net: nn.Module, example: Tensor) -> str | None:
    """The name of the layer that outputs the logits: the network's ``logits_layer``
    attribute if it has one (for a forward that changes the logits after its last layer),
    else the innermost module whose output is the network's output (None: there is none)."""
    named = getattr(net, "logits_layer", None)
    if isinstance(named, str):
        net.get_submodule(named)  # a wrong name fails here, naming itself
        return named
    found = logits_modules(net, example)
    return found[0] if found else None


def default_layers(net: nn.Module, example: Tensor) -> list[str]:
    """The layers analysed unless the user names others: each module holding a convolution,
    linear layer or attention, taken whole (a conv block, an attention block, ``Linear ->
    ReLU``), except a stack of blocks (``features``, ``encoder.layers``): its blocks are
    taken. The layer that outputs the logits is left out."""
    logits = set(logits_modules(net, example))

    def walk(module: nn.Module, prefix: str) -> Iterator[str]:
        for name, child in module.named_children():
            full = prefix + name
            if not _weighted(child):
                continue
            if full in logits or _opened(child):
                yield from walk(child, f"{full}.")
            else:
                yield full

    return list(walk(net, ""))


def _output_problem(outputs: list[object], passes: int, rows: int) -> str | None:
    """Why a layer's recorded outputs cannot be analysed (None: they can)."""
    if len(outputs) != passes:
        return f"runs {len(outputs) / passes:g} times per forward pass, not once"
    shape = getattr(outputs[0], "shape", None)
    if not isinstance(outputs[0], Tensor) or len(shape) not in (2, 4) or shape[0] != rows:
        shown = tuple(shape) if shape is not None else type(outputs[0]).__name__
        return f"outputs {shown} for {rows} images, neither (N, units) nor (N, channels, H, W)"
    return None


def layer_outputs(
    net: nn.Module, inputs: Tensor, layers: list[str], rows: int = 2048
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The outputs of the named ``layers`` for ``inputs`` (in eval mode, ``rows`` images per
    pass), and for each layer left out the reason, logged in one line. Outputs are cloned
    in the hook: an in-place ReLU after a layer would change them."""
    modules = dict(net.named_modules())
    unknown = [name for name in layers if not name or name not in modules]
    if unknown:
        choices = [name for name in modules if name][:40]
        raise ConfigError(f"Unknown layers {unknown}: name modules of the network, e.g. {choices}.")
    seen: dict[str, list[object]] = {name: [] for name in layers}

    def keep(name: str):
        return lambda _, args, out: seen[name].append(
            out.detach().clone() if isinstance(out, Tensor) else out
        )

    chunks = inputs.split(rows)
    with ExitStack() as hooks, evaluating(net):
        for name in dict.fromkeys(layers):
            hooks.enter_context(modules[name].register_forward_hook(keep(name)))
        for chunk in chunks:
            net(chunk)
    captured, skipped = {}, {}
    for name in layers:
        problem = _output_problem(seen[name], len(chunks), len(chunks[0]))
        if problem:
            skipped[name] = problem
            log.warning("Layer %s is left out of the analysis: it %s.", name, problem)
        else:
            captured[name] = torch.cat(seen[name])  # type: ignore[arg-type]
    return captured, skipped


def run_stages(net: nn.Module, names: list[str], x: Tensor) -> Tensor:
    """Apply the stages ``names`` of ``net`` to ``x`` in order."""
    for name in names:
        x = net.get_submodule(name)(x)
    return x


def network_stages(net: nn.Module, example: Tensor) -> list[str] | None:
    """The network's children in order (a stack's blocks each a stage) when applying them
    one after another reproduces ``forward`` on ``example``; None when it does not."""
    names: list[str] = []
    for name, child in net.named_children():
        stack = _is_stack(child)
        names += [f"{name}.{n}" for n, _ in child.named_children()] if stack else [name]
    try:
        with evaluating(net):
            chained = run_stages(net, names, example)
            return names if torch.allclose(chained, net(example), atol=1e-5) else None
    except Exception:  # noqa: BLE001 - a chain that cannot even run is no chain
        return None


def stages_after(net: nn.Module, layer: str, example: Tensor) -> list[str] | None:
    """The stages after ``layer`` where the network is a chain with ``layer`` one of its
    stages; else None."""
    stages = network_stages(net, example)
    return stages[stages.index(layer) + 1 :] if stages and layer in stages else None
