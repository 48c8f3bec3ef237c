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
