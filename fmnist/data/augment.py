"""Batched augmentation on image tensors (N, C, H, W), on whatever device they live.

Written by hand because torchvision.transforms.v2 draws *one* set of random parameters per
call: applied to a batch, every image gets the same crop or erase box. These functions
draw per-image parameters with a few vectorized tensor ops, so augmentation costs
microseconds per batch and runs on the GPU with the data. Randomness comes from torch's
global generator (seeded by ``lightning.seed_everything``) unless a generator is passed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _rand(n: int, images: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, device=images.device, generator=generator)


def random_crop(images: Tensor, padding: int, generator: torch.Generator | None = None) -> Tensor:
    """Zero-pad by ``padding`` and take a random crop of the original size, per image."""
    if padding <= 0:
        return images
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    top = (_rand(n, images, generator) * (2 * padding + 1)).long()
    left = (_rand(n, images, generator) * (2 * padding + 1)).long()
    rows = (top[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_hflip(
    images: Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = _rand(len(images), images, generator) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_erasing(
    images: Tensor,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.25),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random erasing (Zhong et al., 2017): set one random rectangle per image to ``value``.

    Each image is erased with probability ``p``; the box's area is a ``scale`` share of the
    image and its aspect ratio is log-uniform in ``ratio``. The box always lies inside the image.
    """
    n, _, h, w = images.shape
    area = h * w * (scale[0] + (scale[1] - scale[0]) * _rand(n, images, generator))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * _rand(n, images, generator))
    box_h = torch.sqrt(area * aspect).round().clamp(1, h).long()
    box_w = torch.sqrt(area / aspect).round().clamp(1, w).long()
    top = (_rand(n, images, generator) * (h - box_h + 1)).long()
    left = (_rand(n, images, generator) * (w - box_w + 1)).long()
    rows = torch.arange(h, device=images.device)[None, :]
    cols = torch.arange(w, device=images.device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # (n, h)
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])  # (n, w)
    erase = _rand(n, images, generator) < p
    mask = (in_rows[:, :, None] & in_cols[:, None, :] & erase[:, None, None])[:, None]
    return images.masked_fill(mask, value)
