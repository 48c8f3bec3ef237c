"""Permutation importance of layers, channels and input regions.

The trap: in a purely sequential network, shuffling a layer's *whole* output across samples
makes every layer score the same (tests/test_explain.py shows it). So we permute *parts* of a
layer: each channel on its own, and a seeded share of the channels jointly, which puts layers
of different widths on one scale. A score is the drop of accuracy and macro F1 from the
baseline, shaped as in scikit-learn's ``permutation_importance``.

Any network: a layer is a named module (:mod:`fmnist.analysis.stages`) whose output is
captured once; each permuted copy replaces it through a forward hook. Where the network is a
chain of stages (our CNN, MLP and ResNet) only the stages after the layer run, a convolution
opening them only for the changed channel, and many copies share one batched forward pass.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fmnist.analysis.stages import default_layers, layer_outputs, run_stages, stages_after
from fmnist.errors import ConfigError

METRICS = ("accuracy", "f1_macro")


# ----- metrics of many prediction sets at once -----------------------------------------------


def accuracy_and_macro_f1(predictions: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Accuracy and macro F1 (scikit-learn's, ``zero_division=0``) of each row of
    ``predictions`` (P, N) against ``labels`` (N,): a (P, 2) tensor. One ``bincount`` gives all
    P confusion matrices, instead of P calls to a metric object."""
    p, n = predictions.shape
    cells = (
        torch.arange(p, device=predictions.device).unsqueeze(1) * num_classes + labels
    ) * num_classes + predictions
    confusion = torch.bincount(cells.flatten(), minlength=p * num_classes**2)
    confusion = confusion.view(p, num_classes, num_classes).double()
    tp = confusion.diagonal(dim1=1, dim2=2)
    fp, fn = confusion.sum(1) - tp, confusion.sum(2) - tp
    denominator = 2 * tp + fp + fn
    f1 = torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), 0.0)
    present = (confusion.sum(2) + confusion.sum(1)) > 0  # scikit-learn averages these labels
    macro_f1 = (f1 * present).sum(1) / present.sum(1).clamp_min(1)
    return torch.stack([tp.sum(1) / n, macro_f1], 1)


# ----- the engine: permuted copies through the rest of the network ---------------------------

#: The rest of the network after a layer: (outputs of the layer for some images, the indices
#: of those images in the inputs) -> logits.
Rest = Callable[[Tensor, Tensor], Tensor]


def cut(net: nn.Module, layer: str, inputs: Tensor) -> tuple[Tensor, Rest, list[str] | None]:
    """The output of ``layer`` for ``inputs``, the rest of the network after it, and where
    the network is a chain with ``layer`` one of its stages, the stages after it (else None).
    """
    outputs, skipped = layer_outputs(net, inputs, [layer])
    if skipped:
        raise ConfigError(f"Layer {layer!r} cannot be permuted: it {skipped[layer]}.")
    suffix = stages_after(net, layer, inputs[:2])
    if suffix is not None:
        return outputs[layer], lambda x, _: run_stages(net, suffix, x), suffix
    module = net.get_submodule(layer)

    def rest(changed: Tensor, rows: Tensor) -> Tensor:
        with module.register_forward_hook(lambda *_: changed.clone()):  # in-place ops after
            return net(inputs[rows])

    return outputs[layer], rest, None


@torch.inference_mode()
def predict_all(rest: Rest, x: Tensor, rows: int = 2048) -> Tensor:
    """The predicted classes of ``rest`` on all of ``x``, ``rows`` samples at a time."""
    index = torch.arange(len(x), device=x.device)
    chunks = zip(x.split(rows), index.split(rows), strict=True)
    return torch.cat([rest(chunk, where).argmax(1) for chunk, where in chunks])


def _passes(n: int, n_copies: int, rows_per_pass: int) -> tuple[list[slice], list[slice]]:
    """Chunks of B samples, and groups of K copies stacked into one batch, K * B ~ rows_per_pass."""
    chunk = min(n, rows_per_pass)
    per_pass = max(1, rows_per_pass // chunk)
    return (
        [slice(start, min(n, start + chunk)) for start in range(0, n, chunk)],
        [slice(first, min(n_copies, first + per_pass)) for first in range(0, n_copies, per_pass)],
    )


@torch.inference_mode()
def permuted_predictions(
    rest: Rest,
    activations: Tensor,
    masks: Tensor,
    permutations: Tensor,
    rows_per_pass: int = 4096,
) -> Tensor:
    """Predicted classes (P, N) when, in copy p, the elements of ``activations`` (N, *F)
    selected by ``masks[p]`` (bool, broadcastable to F) are taken from sample
    ``permutations[p, i]`` instead of sample i, and the copy goes through ``rest``."""
    n = len(activations)
    predictions = torch.empty(len(masks), n, dtype=torch.long, device=activations.device)
    chunks, groups = _passes(n, len(masks), rows_per_pass)
    for rows in chunks:
        original = activations[rows].unsqueeze(0)
        index = torch.arange(rows.start, rows.stop, device=activations.device)
        for copies in groups:
            taken = activations[permutations[copies, rows]]  # (K, B, *F)
            mixed = torch.where(masks[copies].unsqueeze(1), taken, original)
            logits = rest(mixed.flatten(0, 1), index.repeat(len(taken)))
            predictions[copies, rows] = logits.argmax(1).view(len(taken), -1)
    return predictions


def _leading_conv(net: nn.Module, suffix: list[str] | None) -> nn.Conv2d | None:
    """The convolution that opens the suffix's first stage (a conv block), if any."""
    if not suffix:
        return None
    stage = net.get_submodule(suffix[0])
    first = stage[0] if isinstance(stage, nn.Sequential) and len(stage) else None
    return first if isinstance(first, nn.Conv2d) and first.groups == 1 else None


@torch.inference_mode()
def channel_permuted_predictions(
    net: nn.Module,
    rest: Rest,
    suffix: list[str] | None,
    activations: Tensor,
    channels: Tensor,
    permutations: Tensor,
    rows_per_pass: int = 4096,
) -> Tensor:
    """``permuted_predictions`` for copies that each permute one channel (``channels[p]``)
    of a layer followed by a conv block: the block's convolution is linear, so its output
    for a copy is the cached output plus the convolution of the one changed channel's
    difference, ``conv(A') = conv(A) + W[:, c] * (A'_c - A_c)``. That costs 1/C_in of the
    convolution; all copies of a pass go through it as one grouped convolution.
    Falls back to :func:`permuted_predictions` through ``rest`` when no conv block opens the
    ``suffix`` (the stages after the layer; None where the network is no chain)."""
    conv = _leading_conv(net, suffix)
    if conv is None or suffix is None:
        masks = nn.functional.one_hot(channels, activations.shape[1]).bool()  # channel p: on
        masks = masks.view(len(channels), -1, *(1,) * (activations.ndim - 2))
        return permuted_predictions(rest, activations, masks, permutations, rows_per_pass)
    block_rest = nn.Sequential(*list(net.get_submodule(suffix[0]))[1:])
    n = len(activations)
    predictions = torch.empty(len(channels), n, dtype=torch.long, device=activations.device)
    chunks, groups = _passes(n, len(channels), rows_per_pass)
    for rows in chunks:
        original = activations[rows]
        convolved = conv(original).unsqueeze(1)  # (B, 1, C_out, H', W'), computed once
        for copies in groups:
            picked = channels[copies]  # (K,)
            # Sample-major (B, K, ...) throughout, so every tensor stays contiguous.
            taken = activations[permutations[copies, rows].T, picked]  # (B, K, H, W)
            delta = taken - original[:, picked]
            weight = conv.weight[:, picked].transpose(0, 1).reshape(-1, 1, *conv.kernel_size)
            change = torch.nn.functional.conv2d(
                delta,  # copy k is group k
                weight,  # (K * C_out, 1, kh, kw)
                stride=conv.stride,
                padding=conv.padding,
                dilation=conv.dilation,
                groups=len(picked),
            )
            change = change.view(len(original), len(picked), *convolved.shape[2:])
            x = block_rest(change.add_(convolved).flatten(0, 1))
            logits = run_stages(net, suffix[1:], x)
            predictions[copies, rows] = logits.argmax(1).view(len(original), -1).T
    return predictions


def _generator(seed: int, name: str) -> torch.Generator:
    """A generator per (seed, layer): a layer's result does not depend on the other layers."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def _random_permutations(count: int, n: int, generator: torch.Generator) -> Tensor:
    return torch.rand(count, n, generator=generator).argsort(1)


def _bunch(drops: np.ndarray) -> dict[str, Any]:
    """scikit-learn's result layout for drops of shape ([n_features,] n_repeats)."""
    return {
        "importances_mean": drops.mean(-1).tolist(),
        "importances_std": drops.std(-1).tolist(),
        "importances": drops.tolist(),
    }


# ----- layer and channel importance ---------------------------------------------------------


def check_options(n_repeats: int, share: float) -> None:
    if n_repeats < 1:
        raise ConfigError(f"n_repeats={n_repeats} must be >= 1.")
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"share={share} is the share of channels permuted jointly: use (0, 1].")


def layer_importance(
    net: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    layer: str,
    n_repeats: int = 3,
    share: float = 0.25,
    seed: int = 0,
    num_classes: int = 10,
    rows_per_pass: int = 4096,
) -> dict[str, Any]:
    """Permutation importance of each channel of ``layer`` and of a ``share`` of its channels
    permuted jointly, as drops of accuracy and macro F1 from the baseline.

    Returns per metric scikit-learn's ``importances_mean``/``importances_std``/``importances``
    over channels, and under ``joint`` the same for the shared permutation (one value per
    repeat; each repeat draws its own seeded channel subset and permutation). ``summary``
    holds the per-layer numbers: joint-share drop, sum and mean of the channel drops and the
    number of channels that matter (``mean - 2 * std > 0``, as in scikit-learn's example).
    """
    check_options(n_repeats, share)
    net.eval()
    activations, rest, suffix = cut(net, layer, inputs)
    n, channels = len(activations), activations.shape[1]
    generator = _generator(seed, layer)
    joint_size = max(1, round(share * channels))
    # Per repeat, a seeded set of channels to permute jointly, drawn before the permutations;
    # a channel is dimension 1, the mask broadcasts over the remaining (spatial) dimensions.
    joint_masks = torch.zeros(n_repeats, channels, *(1,) * (activations.ndim - 2), dtype=torch.bool)
    for r in range(n_repeats):
        joint_masks[r, torch.randperm(channels, generator=generator)[:joint_size]] = True
    copies = channels * n_repeats  # one per channel and repeat, then one joint copy per repeat
    permutations = _random_permutations(copies + n_repeats, n, generator).to(activations.device)
    channel_of_copy = torch.arange(channels, device=activations.device).repeat_interleave(n_repeats)
    single = channel_permuted_predictions(
        net, rest, suffix, activations, channel_of_copy, permutations[:copies], rows_per_pass
    )
    joint = permuted_predictions(
        rest, activations, joint_masks.to(activations.device), permutations[copies:], rows_per_pass
    )
    predictions = torch.cat([single, joint])
    baseline = accuracy_and_macro_f1(predict_all(rest, activations)[None], labels, num_classes)[0]
    drops = (baseline - accuracy_and_macro_f1(predictions, labels, num_classes)).cpu().numpy()
    result = _layer_result(drops, channels, n_repeats, share, joint_size)
    result["baseline"] = dict(zip(METRICS, baseline.cpu().tolist(), strict=True))
    return result


def _layer_result(
    drops: np.ndarray, channels: int, n_repeats: int, share: float, joint_size: int
) -> dict[str, Any]:
    """``layer_importance``'s result from the drops of every permuted copy, (P, metrics): the
    channel copies first (channel-major, ``n_repeats`` each), then one joint copy per repeat."""
    result: dict[str, Any] = {"channels": channels, "joint": {"share": share, "size": joint_size}}
    result["summary"] = {}
    for m, metric in enumerate(METRICS):
        per_channel = drops[: channels * n_repeats, m].reshape(channels, n_repeats)
        joint = drops[channels * n_repeats :, m]
        result[metric] = _bunch(per_channel)
        result["joint"][metric] = _bunch(joint)  # one value per repeat
        means, stds = per_channel.mean(1), per_channel.std(1)
        result["summary"][metric] = {
            "joint_drop": float(joint.mean()),
            "joint_drop_std": float(joint.std()),
            "channel_drop_sum": float(means.sum()),
            "channel_drop_mean": float(means.mean()),
            "channels_that_matter": int(((means - 2 * stds) > 0).sum()),
        }
    return result


def permutation_importance(
    net: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    layers: list[str] | None = None,
    n_repeats: int = 3,
    share: float = 0.25,
    seed: int = 0,
    num_classes: int = 10,
    rows_per_pass: int = 4096,
) -> dict[str, Any]:
    """:func:`layer_importance` of ``layers`` (default: ``stages.default_layers``, e.g. the
    CNN's conv blocks and dense layer); layers whose output it cannot permute are listed
    under ``skipped`` with the reason, and logged."""
    layers = list(layers) if layers is not None else default_layers(net, inputs[:2])
    _, skipped = layer_outputs(net, inputs[:2], layers)
    results = {
        layer: layer_importance(
            net, inputs, labels, layer, n_repeats, share, seed, num_classes, rows_per_pass
        )
        for layer in layers
        if layer not in skipped
    }
    baseline = next(iter(results.values()))["baseline"] if results else {}
    return {
        "n_samples": len(inputs),
        "n_repeats": n_repeats,
        "share": share,
        "seed": seed,
        "baseline": baseline,
        "layers": results,
        "skipped": skipped,
    }


def top_channels(layer_result: dict[str, Any], k: int, metric: str = "accuracy") -> list[int]:
    """The ``k`` channels whose permutation costs most, most important first."""
    means = np.asarray(layer_result[metric]["importances_mean"])
    return np.argsort(-means, kind="stable")[:k].tolist()


# ----- input regions ------------------------------------------------------------------------


def region_importance(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    patch: int = 4,
    n_repeats: int = 3,
    seed: int = 0,
    num_classes: int = 10,
    rows_per_pass: int = 4096,
) -> dict[str, Any]:
    """Where the model looks: each ``patch`` x ``patch`` square of the input images (N, 1, H,
    W) is permuted across samples on its own; the drop of each class's accuracy (recall)
    gives a (num_classes, H/patch, W/patch) heatmap, and the drop of overall accuracy one
    (H/patch, W/patch) map."""
    if images.ndim != 4:
        raise ConfigError("region_importance needs images of shape (N, C, H, W).")
    height, width = images.shape[-2:]
    if patch < 1 or height % patch or width % patch:
        raise ConfigError(f"patch={patch} must divide the image size {height}x{width}.")
    check_options(n_repeats, 1.0)
    net.eval()
    rows, cols = height // patch, width // patch
    # Mask k selects patch k: the identity over patches, each entry widened to patch x patch.
    masks = torch.eye(rows * cols, dtype=torch.bool).view(-1, 1, rows, cols)
    masks = masks.repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    masks = masks.repeat_interleave(n_repeats, 0)
    permutations = _random_permutations(len(masks), len(images), _generator(seed, "input"))
    masks, permutations = masks.to(images.device), permutations.to(images.device)
    rest: Rest = lambda x, _: net(x)  # noqa: E731
    predictions = permuted_predictions(rest, images, masks, permutations, rows_per_pass)
    # Row 0 the unpermuted baseline; the sums of 0/1 hits are exact, so rows are independent.
    hits = (torch.cat([predict_all(rest, images)[None], predictions]) == labels).double()
    one_hot = torch.nn.functional.one_hot(labels, num_classes).double()  # (N, classes)
    recall = (hits @ one_hot) / one_hot.sum(0).clamp_min(1)  # (1 + P, classes)
    class_drop = (recall[0] - recall[1:]).view(rows * cols, n_repeats, num_classes)
    accuracy = hits.mean(1)
    accuracy_drop = (accuracy[0] - accuracy[1:]).view(rows * cols, n_repeats).cpu().numpy()
    return {
        "patch": patch,
        "n_samples": len(images),
        "n_repeats": n_repeats,
        "seed": seed,
        "class_heatmaps": class_drop.mean(1).T.cpu().reshape(num_classes, rows, cols).tolist(),
        "heatmap": accuracy_drop.mean(1).reshape(rows, cols).tolist(),
        "accuracy": _bunch(accuracy_drop),
    }


def evaluation_subset(n_total: int, size: int | None, seed: int = 0) -> Tensor:
    """Seeded indices of ``size`` samples (all, in order, when ``size`` is None or too big)."""
    if size is None or size >= n_total:
        return torch.arange(n_total)
    if size < 1:
        raise ConfigError(f"samples={size} must be a positive number of images (or null: all).")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:size].sort()[0]


IMPORTANCE_HEADER = [
    "layer",
    "channels",
    "joint drop acc (pp)",
    "joint drop F1 (pp)",
    "sum channel drops acc (pp)",
    "mean channel drop acc (pp)",
    "channels that matter",
]


def importance_rows(result: dict[str, Any]) -> list[list[str]]:
    """One table row per layer of a :func:`permutation_importance` result (percentage points)."""
    rows = []
    for layer, values in result["layers"].items():
        acc, f1 = values["summary"]["accuracy"], values["summary"]["f1_macro"]
        rows.append(
            [
                layer,
                str(values["channels"]),
                f"{100 * acc['joint_drop']:.2f} ± {100 * acc['joint_drop_std']:.2f}",
                f"{100 * f1['joint_drop']:.2f} ± {100 * f1['joint_drop_std']:.2f}",
                f"{100 * acc['channel_drop_sum']:.2f}",
                f"{100 * acc['channel_drop_mean']:.3f}",
                f"{acc['channels_that_matter']}/{values['channels']}",
            ]
        )
    return rows
