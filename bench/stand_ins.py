"""Images that stand in for people's: test items re-rendered as product photos, and images
that are not clothing at all. The tests, ``bench/photos.py`` and the README's figures use them
to check the conversion and the OOD flag against the model's answers on the raw tiles.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist.data.classes import IMAGE_SIZE

#: Size of a re-rendered photo, and of the white canvas it is pasted on off-centre.
PHOTO_SIZE = 112
CANVAS_SIZE = 224


def as_photo(tile: np.ndarray, size: int = PHOTO_SIZE) -> np.ndarray:
    """A 28x28 tile as a product photo: dark item on white, ``size`` x ``size`` RGB,
    upscaled smoothly (bicubic) as a camera would see it, not in blocks."""
    photo = Image.fromarray(255 - tile).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(photo.convert("RGB"))


def cutout(
    tile: np.ndarray, ink: tuple[int, int, int] = (190, 190, 190), size: int = PHOTO_SIZE
) -> np.ndarray:
    """A tile as a product image cut out on a transparent background, as shops publish them:
    RGBA ``size`` x ``size``, the item shaded from white (where the tile is 0) towards
    ``ink`` (where it is 255; a light grey by default), opaque over its silhouette and
    transparent around it."""
    resized = Image.fromarray(tile).resize((size, size), Image.Resampling.BICUBIC)
    contrast = np.asarray(resized, np.float32)[..., None] / 255
    rgb = 255 * (1 - contrast) + np.asarray(ink, np.float32) * contrast
    alpha = np.clip(contrast * 4, 0, 1) * 255  # the silhouette, as cast_shadow's
    return np.concatenate([rgb, alpha], -1).round().astype(np.uint8)


def off_centre(photo: np.ndarray, rng: np.random.Generator, size: int = CANVAS_SIZE) -> np.ndarray:
    """``photo`` pasted at a random place on a white ``size`` x ``size`` canvas: the item
    covers about half of the frame's width, not centred."""
    canvas = np.full((size, size, 3), 255, np.uint8)
    top, left = rng.integers(0, size - photo.shape[0] + 1, size=2)
    canvas[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
    return canvas


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_pngs(images: list[np.ndarray], folder: Path, prefix: str) -> list[Path]:
    """Write each image as ``<prefix>_<i>.png`` (zero-padded, so they sort in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{prefix}_{i:04d}.png"
        path.write_bytes(png_bytes(image))
        paths.append(path)
    return paths


def digits() -> np.ndarray:
    """scikit-learn's 1,797 8x8 digits as MNIST-like tiles: light on black, upscaled to
    20x20 and centred in 28x28 as MNIST's digits are (uint8 (N, 28, 28))."""
    from sklearn.datasets import load_digits

    images = (load_digits().images * (255 / 16)).round().astype(np.uint8)
    inner, pad = 20, (IMAGE_SIZE - 20) // 2
    upscaled = [
        np.asarray(Image.fromarray(d).resize((inner, inner), Image.Resampling.BILINEAR))
        for d in images
    ]
    return np.stack([np.pad(u, pad) for u in upscaled])


def uniform_noise(n: int, seed: int = 0) -> np.ndarray:
    """``n`` tiles of uniform noise over 0-255 (uint8 (n, 28, 28))."""
    return np.random.default_rng(seed).integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def scene(
    tile: np.ndarray,
    rng: np.random.Generator,
    background: tuple[int, int, int] = (255, 255, 255),
    ink: tuple[int, int, int] | None = None,
    size: int = CANVAS_SIZE,
    cover: tuple[float, float] = (0.35, 0.65),
    rotation: float = 0.0,
    gradient: float = 0.0,
    vignette: float = 0.0,
    shadow: float = 0.0,
    noise: float = 0.0,
) -> np.ndarray:
    """A 28x28 tile photographed on a background: uint8 (size, size, 3) RGB.

    The item's contrast goes from ``background`` (where the tile is 0) towards ``ink``
    (where it is 255; black on a light background, white on a dark one by default), the way
    a darker garment absorbs more of the light the sheet would reflect. Its square spans a
    share of the frame's side drawn from ``cover``, turned by ``rotation`` degrees (either
    way), at a random place inside the frame. Then, in order: a soft ``shadow`` (the item's
    silhouette, offset down and right and blurred, darkening the background beside the item
    by up to that share), uneven light (``gradient``: that share darker across the frame in a random
    direction; ``vignette``: that share darker in the corners), and Gaussian sensor
    ``noise`` of that standard deviation in grey levels.
    """
    background_rgb = np.asarray(background, np.float32)
    if ink is None:
        ink = (0, 0, 0) if float(background_rgb @ (0.299, 0.587, 0.114)) >= 128 else (255,) * 3
    side = max(8, round(size * rng.uniform(*cover)))
    item = Image.fromarray(tile).resize((side, side), Image.Resampling.BICUBIC)
    if rotation:
        angle = rotation * rng.choice([-1.0, 1.0])
        item = item.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    if max(item.size) > size:
        item = item.resize((min(item.width, size), min(item.height, size)))
    contrast = np.zeros((size, size), np.float32)
    top = rng.integers(0, size - item.height + 1)
    left = rng.integers(0, size - item.width + 1)
    contrast[top : top + item.height, left : left + item.width] = np.asarray(item) / 255.0
    sheet = np.broadcast_to(background_rgb, (size, size, 3)).copy()
    if shadow:
        sheet *= 1 - shadow * cast_shadow(contrast, side)[..., None]
    photo = sheet * (1 - contrast[..., None]) + np.asarray(ink, np.float32) * contrast[..., None]
    photo *= uneven_light(size, rng, gradient, vignette)[..., None]
    if noise:
        photo += rng.normal(0, noise, photo.shape)
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8)


def cast_shadow(contrast: np.ndarray, side: int) -> np.ndarray:
    """Where the item's soft shadow falls, 0-1 (H, W): its silhouette offset down and right by
    6% of its side, blurred, and never on the item itself."""
    from scipy import ndimage

    silhouette = np.clip(contrast * 4, 0, 1)
    offset = round(0.06 * side)
    cast = ndimage.shift(silhouette, (offset, offset), order=1)
    cast = ndimage.gaussian_filter(cast, 0.05 * side)
    return np.clip(cast / max(cast.max(), 1e-6), 0, 1) * (1 - silhouette)


def uneven_light(
    size: int, rng: np.random.Generator, gradient: float, vignette: float
) -> np.ndarray:
    """The light's share that reaches each pixel (H, W): ``gradient`` darker across the frame
    in a random direction, ``vignette`` darker in the corners; 1 everywhere without either."""
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    light = np.ones((size, size), np.float32)
    if gradient:
        direction = rng.uniform(0, 2 * np.pi)
        along = (x * np.cos(direction) + y * np.sin(direction)) / np.sqrt(2)  # -1..1
        light *= 1 - gradient * (along + 1) / 2
    if vignette:
        light *= 1 - vignette * (x**2 + y**2) / 2
    return light


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """``image`` as a JPEG file of that quality (4:2:0 chroma, as cameras and phones save)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
