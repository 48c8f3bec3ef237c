"""Fashion-MNIST-C, made on the fly: image corruptions as batched tensor functions.

Fashion-MNIST-C (after MNIST-C, Mu & Gilmer 2019) cannot be downloaded here, so the test set
is corrupted in memory: :data:`SEVERITIES` lists each corruption's five parameters, and
:func:`corrupt` applies one of them to a batch, seeded, so a benchmark cell is the same images
every time. The operations take (N, 1, H, W) or (N, H, W) images, uint8 or 0-1 floats, on any
device, and keep shape and dtype. Training (``fmnist.data.augment.corruption_mix``) calls them
with other parameters: the evaluation's exact values are never trained on. Where a corruption
has a direction (rotation, shear, zoom, motion), each image draws its own.
"""

from __future__ import annotations

import functools
import inspect
import math
import zlib
from collections.abc import Callable

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode

from fmnist.data.pixels import to_unit_range
from fmnist.errors import ConfigError

Generator = torch.Generator | None


def _like(x: Tensor, images: Tensor) -> Tensor:
    """0-1 floats back to the input's dtype (uint8 rounded) and shape."""
    x = x.clamp(0.0, 1.0)
    if images.dtype == torch.uint8:
        x = (x * 255.0).round()
    x = x.to(images.dtype)
    return x.squeeze(1) if images.dim() == 3 else x


def _uniform(x: Tensor, generator: Generator, shape: tuple[int, ...] | None = None) -> Tensor:
    return torch.rand(shape or x.shape, generator=generator, device=x.device)


def _per_image(choices: list[Tensor], generator: Generator) -> Tensor:
    """For each image, one of several transformed versions of the batch, picked at random."""
    pick = (_uniform(choices[0], generator, (len(choices[0]),)) * len(choices)).long()
    out = choices[0]
    for i, version in enumerate(choices[1:], start=1):
        out = torch.where((pick == i)[:, None, None, None], version, out)
    return out


# ----- noise ---------------------------------------------------------------------------------


def shot_noise(images: Tensor, photons: float, generator: Generator = None) -> Tensor:
    """Poisson (photon) noise: each pixel counts ``photons * value`` photons; fewer is noisier."""
    x = to_unit_range(images)
    return _like(torch.poisson(x * photons, generator=generator) / photons, images)


def impulse_noise(images: Tensor, amount: float, generator: Generator = None) -> Tensor:
    """Salt-and-pepper noise: a share ``amount`` of the pixels set to black or white."""
    x = to_unit_range(images)
    u = _uniform(x, generator)
    x = torch.where(u < amount / 2, 0.0, torch.where(u > 1 - amount / 2, 1.0, x))
    return _like(x, images)


def gaussian_noise(images: Tensor, sigma: float, generator: Generator = None) -> Tensor:
    """Additive Gaussian noise of standard deviation ``sigma`` (0-1 scale)."""
    x = to_unit_range(images)
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    return _like(x + sigma * noise, images)


# ----- blur ----------------------------------------------------------------------------------


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (kernel of +-3 sigma)."""
    x = to_unit_range(images)
    n, c, h, w = x.shape
    size = 2 * math.ceil(3 * sigma) + 1
    # As one image of N channels: torchvision then blurs with one grouped (depthwise)
    # convolution, ~2.5x faster on CPU than N single-channel images.
    blurred = TF.gaussian_blur(x.reshape(1, n * c, h, w), [size, size], [sigma, sigma])
    return _like(blurred.view(n, c, h, w), images)


def glass_blur(
    images: Tensor, sigma: float, delta: int, iterations: int, generator: Generator = None
) -> Tensor:
    """Glass blur (as in ImageNet-C): blur, move every pixel to a random neighbour up to
    ``delta`` pixels away ``iterations`` times, blur again. The neighbours are drawn for all
    pixels at once instead of ImageNet-C's pixel-by-pixel swaps, which loop in Python."""
    x = to_unit_range(gaussian_blur(images, sigma))
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)[:, None].expand(h, w)
    cols = torch.arange(w, device=x.device)[None, :].expand(h, w)
    for _ in range(iterations):
        shift = (_uniform(x, generator, (2, n, 1, h, w)) * (2 * delta + 1)).long() - delta
        src_r = (rows + shift[0]).clamp(0, h - 1)
        src_c = (cols + shift[1]).clamp(0, w - 1)
        flat = (src_r * w + src_c).expand(n, c, h, w).reshape(n, c, -1)
        x = x.reshape(n, c, -1).gather(2, flat).view(n, c, h, w)
    return gaussian_blur(_like(x, images), sigma)


def motion_blur(images: Tensor, length: float, generator: Generator = None) -> Tensor:
    """Blur along a line of ``length`` pixels through each pixel, at a random angle per image
    (a camera or item moving during the exposure). One grouped convolution for the batch."""
    x = to_unit_range(images)
    n, c, h, w = x.shape
    radius = math.ceil(length / 2)
    size = 2 * radius + 1
    angle = _uniform(x, generator, (n,)) * math.pi
    t = torch.linspace(-length / 2, length / 2, 8 * size, device=x.device)
    px = radius + t[None, :] * angle.cos()[:, None]  # (n, points)
    py = radius + t[None, :] * angle.sin()[:, None]
    grid = torch.arange(size, device=x.device, dtype=x.dtype)
    # Bilinear splatting of the line's points onto the kernel grid: a tent in each axis.
    wx = (1 - (px[:, :, None] - grid).abs()).clamp_min(0)  # (n, points, size)
    wy = (1 - (py[:, :, None] - grid).abs()).clamp_min(0)
    kernel = torch.einsum("npy,npx->nyx", wy, wx)
    kernel = kernel / kernel.sum((1, 2), keepdim=True)
    weight = kernel.repeat_interleave(c, 0)[:, None]  # (n * c, 1, size, size)
    out = torch.nn.functional.conv2d(
        x.reshape(1, n * c, h, w), weight, padding=radius, groups=n * c
    )
    return _like(out.view(n, c, h, w), images)


# ----- geometry (each image turns, shears or zooms its own way) -------------------------------


def _affine(x: Tensor, angle: float = 0.0, scale: float = 1.0, shear: tuple = (0.0, 0.0)) -> Tensor:
    return TF.affine(
        x,
        angle=angle,
        translate=[0, 0],
        scale=scale,
        shear=list(shear),
        interpolation=InterpolationMode.BILINEAR,
    )


def rotate(images: Tensor, degrees: float, generator: Generator = None) -> Tensor:
    """Rotate by ``degrees``, clockwise or anticlockwise per image."""
    x = to_unit_range(images)
    return _like(
        _per_image([_affine(x, angle=degrees), _affine(x, angle=-degrees)], generator), images
    )


def shear(images: Tensor, degrees: float, generator: Generator = None) -> Tensor:
    """Shear by ``degrees`` along x or y, either way, per image."""
    x = to_unit_range(images)
    versions = [
        _affine(x, shear=s) for s in ((degrees, 0), (-degrees, 0), (0, degrees), (0, -degrees))
    ]
    return _like(_per_image(versions, generator), images)


def scale(images: Tensor, change: float, generator: Generator = None) -> Tensor:
    """Zoom out to ``1 - change`` or in to ``1 + change`` of the size, per image."""
    x = to_unit_range(images)
    versions = [_affine(x, scale=1 - change), _affine(x, scale=1 + change)]
    return _like(_per_image(versions, generator), images)


# ----- intensity -----------------------------------------------------------------------------


def brightness(images: Tensor, shift: float) -> Tensor:
    """Add ``shift`` to every pixel (0-1 scale): the black background turns grey."""
    return _like(to_unit_range(images) + shift, images)


def contrast(images: Tensor, factor: float) -> Tensor:
    """Blend each image with its mean grey level: ``factor`` 1 keeps it, 0 leaves flat grey."""
    return _like(TF.adjust_contrast(to_unit_range(images), factor), images)


def inversion(images: Tensor, threshold: float) -> Tensor:
    """Invert the pixels at or above ``threshold`` (0-1; solarization): 1 inverts nothing,
    0 everything (a dark item on a light background)."""
    return _like(TF.solarize(to_unit_range(images), threshold), images)


# ----- flips and turns (one severity) ----------------------------------------------------------


def turn(images: Tensor, quarter_turns: int) -> Tensor:
    """Rotate by ``quarter_turns`` x 90 degrees anticlockwise (exact: no interpolation)."""
    return torch.rot90(images, quarter_turns, dims=(-2, -1))


# ----- the benchmark -------------------------------------------------------------------------

#: Corruption -> (operation, its parameter at severities 1-5; flips and turns: one). Chosen
#: for 28x28 images, after ImageNet-C/MNIST-C, so severity 1 is mild and 5 hard but
#: recognizable to a person (see the example grid of ``analyze.py task=robustness``).
SEVERITIES: dict[str, tuple[Callable[..., Tensor], tuple]] = {
    "shot_noise": (shot_noise, (60, 25, 12, 5, 3)),  # photons at full white
    "impulse_noise": (impulse_noise, (0.03, 0.06, 0.09, 0.17, 0.27)),  # share of pixels
    # (blur sigma, largest pixel move, moves)
    "glass_blur": (glass_blur, ((0.5, 1, 1), (0.5, 1, 2), (0.6, 2, 1), (0.6, 2, 2), (0.7, 3, 2))),
    "motion_blur": (motion_blur, (2, 3, 4, 5, 6)),  # line length in pixels
    "shear": (shear, (10, 20, 30, 40, 50)),  # degrees
    "scale": (scale, (0.1, 0.2, 0.3, 0.4, 0.5)),  # zoom out to 1 - c or in to 1 + c
    "rotation": (rotate, (10, 20, 30, 40, 50)),  # degrees
    "brightness": (brightness, (0.1, 0.2, 0.3, 0.4, 0.5)),  # added to 0-1 pixels
    "contrast": (contrast, (0.4, 0.3, 0.2, 0.1, 0.05)),  # factor
    "inversion": (inversion, (0.8, 0.6, 0.4, 0.2, 0.0)),  # solarization threshold
    "hflip": (TF.horizontal_flip, (None,)),
    "vflip": (TF.vertical_flip, (None,)),
    "rot90": (turn, (1,)),
    "rot180": (turn, (2,)),
    "rot270": (turn, (3,)),
}
#: Every corruption, in the order of the tables.
CORRUPTIONS = tuple(SEVERITIES)


@functools.cache
def is_random(operation: Callable[..., Tensor]) -> bool:
    """Whether an operation's output depends on random numbers: it takes a generator."""
    return "generator" in inspect.signature(operation).parameters


def severities(name: str) -> range:
    """The severities of a corruption: 1-5, or just 1 for flips and turns."""
    if name not in SEVERITIES:
        raise ConfigError(f"Unknown corruption {name!r}: use one of {', '.join(CORRUPTIONS)}.")
    return range(1, len(SEVERITIES[name][1]) + 1)


def corrupt(images: Tensor, name: str, severity: int, seed: int = 0) -> Tensor:
    """``images`` with corruption ``name`` at ``severity`` (1-5), the same for the same seed.

    Each (corruption, severity) cell draws from its own generator, seeded from ``seed`` and
    the cell, so cells do not share noise and one cell can be remade alone.
    """
    if severity not in severities(name):
        raise ConfigError(f"{name} has severities {list(severities(name))}, not {severity}.")
    operation, parameters = SEVERITIES[name]
    parameter = parameters[severity - 1]
    arguments = () if parameter is None else (parameter,)
    arguments = parameter if isinstance(parameter, tuple) else arguments
    if not is_random(operation):
        return operation(images, *arguments)
    if images.device.type != "cpu":  # drawn on the CPU, so every device gives the same images
        return corrupt(images.cpu(), name, severity, seed).to(images.device)
    generator = torch.Generator().manual_seed(zlib.crc32(f"{name}:{severity}".encode()) + seed)
    return operation(images, *arguments, generator=generator)
