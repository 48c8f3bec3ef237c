"""How close training gets to the machine: the CPU's matmul peak and a model's training FLOPs.

Both count a multiply-add as 2 FLOPs (``FlopCounterMode`` does), so achieved GFLOP/s over the
peak is a fair share. The peak is measured, not read off a datasheet: the best of a few large
square matmuls, which is what oneDNN/MKL reach on these cores.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fmnist.config import build


def matmul_peak_gflops(
    dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5
) -> float:
    """The best GFLOP/s of ``repeats`` n x n matmuls (after one warm-up) on the CPU."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(dtype)
    b = torch.randn(n, n, generator=generator).to(dtype)
    out = torch.mm(a, b)  # warm-up: thread pool, kernel selection, pages of `out`
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def training_flops_per_image(
    net: nn.Module, batch_size: int, image_shape: tuple[int, ...] = (1, 28, 28)
) -> float:
    """FLOPs of one training step (forward, cross-entropy, backward) per image.

    Counted on the meta device when ``net`` lives there: the shapes alone give the count,
    so even a big model is counted at once. The optimizer step is elementwise and not counted.
    """
    device = next(net.parameters()).device
    x = torch.zeros(batch_size, *image_shape, device=device)
    y = torch.zeros(batch_size, dtype=torch.long, device=device)
    net.train()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    return counter.get_total_flops() / batch_size


def preset_flops_per_image(cfg: DictConfig) -> float:
    """Training FLOPs per image of a run config's network, at its batch size."""
    with torch.device("meta"):
        net = build(cfg.model)
    return training_flops_per_image(net, int(cfg.data.batch_size))
