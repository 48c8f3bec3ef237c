"""Pixel values: uint8 images to the 0-1 range, and the training split's statistics.

The model's ``Preprocess`` module (``fmnist.models.preprocess``) applies these statistics;
the data module fits them on the training split and scales images before augmenting them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from fmnist.config import checked

#: ``data.normalize`` values: one mean/std, a mean/std per pixel, or pixels only scaled.
Normalization = Literal["global", "per_pixel", "none"]
#: Per-pixel std floor: border pixels are almost always 0 and would otherwise be blown up.
STD_FLOOR = 1e-2


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 0-255 or 0-1 float images, (N, H, W) or (N, 1, H, W) -> float (N, 1, H, W), 0-1."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x.unsqueeze(1) if x.dim() == 3 else x


@checked("data")
def fit_statistics(train_images: Tensor, normalize: Normalization) -> tuple[Tensor, Tensor]:
    """Mean and std of the training images (uint8) for ``normalize``; identity for ``none``.

    Fitted on the training split only, so validation and test stay unseen.
    """
    pixels = train_images.double() / 255.0
    if normalize == "global":
        return pixels.mean().float(), pixels.std().float()
    if normalize == "per_pixel":
        return pixels.mean(0).float(), pixels.std(0).float().clamp_min(STD_FLOOR)
    return torch.tensor(0.0), torch.tensor(1.0)
