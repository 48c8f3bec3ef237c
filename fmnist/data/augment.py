"""Batched augmentation on image tensors (N, C, H, W), on whatever device they live.

Written by hand because torchvision.transforms.v2 draws *one* set of random parameters per
call: applied to a batch, every image gets the same crop or erase box. These functions
draw per-image parameters with a few vectorized tensor ops, so augmentation costs
microseconds per batch and runs on the GPU with the data. Randomness comes from torch's
global generator (seeded by ``lightning.seed_everything``) unless a generator is passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from fmnist.data import corruptions


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


def alternating_hflip(images: Tensor, epoch: int) -> Tensor:
    """Mirror each image on every other epoch (airbench's alternating flips).

    Random flips leave an image on the same side for several epochs in a row; here each image
    alternates, so two epochs show every image both ways. Which epochs is a per-image bit
    taken from the image itself, the parity of its pixel sum (``images`` must be raw integer
    pixels): no index is needed, so it holds on every loader path, under DDP and on resume.
    """
    if images.is_floating_point():
        raise TypeError("alternating_hflip needs raw integer pixels (its parity bit), not floats.")
    odd = (images.flatten(1).sum(1, dtype=torch.int64) + epoch) % 2 == 1
    return torch.where(odd.view(-1, *[1] * (images.dim() - 1)), images.flip(-1), images)


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


#: Train-time counterparts of the Fashion-MNIST-C corruptions (``fmnist.data.corruptions``):
#: an operation and the range its strength is drawn from, uniformly. Never the evaluation's
#: parameters: Gaussian noise and Gaussian blur stand in for shot noise and glass and motion
#: blur, and the others draw continuous strengths (mostly milder than severity 5) where the
#: evaluation has five fixed ones. Flips and turns are left out: every one of them *is* the
#: evaluation's corruption, and flips cost clean accuracy here (see conf/data).
CORRUPTION_MIX: tuple[tuple[Callable[..., Tensor], tuple[float, float]], ...] = (
    (corruptions.gaussian_noise, (0.02, 0.2)),  # std on the 0-1 scale
    (corruptions.impulse_noise, (0.01, 0.15)),  # share of pixels
    (corruptions.gaussian_blur, (0.3, 1.0)),  # sigma in pixels
    (corruptions.rotate, (0.0, 35.0)),  # degrees, either way
    (corruptions.shear, (0.0, 30.0)),  # degrees, x or y, either way
    (corruptions.scale, (0.0, 0.3)),  # zoom out to 1 - c or in to 1 + c
    (corruptions.brightness, (-0.2, 0.4)),  # added to 0-1 pixels
    (corruptions.contrast, (0.1, 1.0)),  # factor
)
#: Images sharing one draw of :func:`corruption_mix`: torchvision's functional ops take one
#: parameter per call, so a batch is cut into chunks (its images are already in random
#: order); a batch of 128 gets 8 draws at the cost of 8 calls.
CHUNK = 16


def corruption_mix(images: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Corruption-style augmentation: each chunk of :data:`CHUNK` images gets, with probability
    ``p``, one operation of :data:`CORRUPTION_MIX` at a random strength; the rest stay clean.
    Shape, dtype and the 0-1 (or uint8) range are kept. The chunks' draws are made on the CPU
    (no device sync), so ``generator`` must be a CPU generator."""
    if p <= 0:
        return images
    chunks = images.split(CHUNK)
    draws = torch.rand(len(chunks), 3, generator=generator).tolist()
    out = []
    for chunk, (apply, which, strength) in zip(chunks, draws, strict=True):
        if apply >= p:
            out.append(chunk)
            continue
        operation, (low, high) = CORRUPTION_MIX[int(which * len(CORRUPTION_MIX))]
        value = low + (high - low) * strength
        random = {"generator": generator} if corruptions.is_random(operation) else {}
        out.append(operation(chunk, value, **random))
    return torch.cat(out)
