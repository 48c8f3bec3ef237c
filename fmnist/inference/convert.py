"""Fashion-MNIST's own conversion of a product photo into a 28x28 tile, step by step.

The dataset's paper (Xiao et al. 2017, section 2) made every tile from a 51x73 thumbnail of a
product photo on a light background (#fdfdfd) with these seven steps, which
:func:`fashion_mnist_tile` follows in order:

1. Converting the input to a PNG image. Here: any image PIL reads, EXIF orientation applied,
   transparency composited on white (``fmnist.inference.decode``), kept in RGB until step 7.
2. Trimming any edges that are close to the colour of the corner pixels, "close" being within
   5% of the maximum intensity as a distance in RGB space (:func:`trim`).
3. Resizing the longest edge to 28 by subsampling the pixels, i.e. skipping some rows and
   columns (:func:`subsample`).
4. Sharpening with a Gaussian operator of radius and standard deviation 1.0, with increasing
   effect near outlines (:func:`sharpen`).
5. Extending the shortest edge to 28 with the image in the centre of the canvas.
6. Negating the intensities, so the item is light on black.
7. Converting to 8-bit grayscale.

Without step 2 a photo whose item covers half of a white frame, off-centre, is shrunk whole
and the item ends up small and off-centre in the tile: the model then answers near chance.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from fmnist.data.classes import IMAGE_SIZE
from fmnist.errors import ConfigError

INVERT_CHOICES = ("auto", True, False)
#: Step 2: a pixel is background when its RGB distance to the corner colour is within 5% of
#: the maximum intensity (ImageMagick's ``-fuzz 5% -trim``, which the wording describes).
TRIM_DISTANCE = 0.05 * 255
#: The dataset's inputs were Zalando's 51x73 thumbnails: larger images are first averaged
#: down to that scale (box filter), so that step 3 subsamples what the dataset's subsampling
#: saw instead of aliasing a photo's fine texture into noise.
THUMBNAIL_EDGE = 73
#: Step 4: a 3x3 Gaussian of sigma 1.0 (radius 1), row by row.
_GAUSS = np.exp(-np.add.outer(np.arange(-1, 2) ** 2, np.arange(-1, 2) ** 2) / 2.0)
_GAUSS /= _GAUSS.sum()
_IDENTITY = np.zeros((3, 3))
_IDENTITY[1, 1] = 1.0
#: Unsharp masking, ``2 * image - blur(image)``, as one kernel: flat regions stay as they are
#: and the effect grows with the local contrast ("increasing effect near outlines").
SHARPEN_KERNEL = ImageFilter.Kernel((3, 3), (2 * _IDENTITY - _GAUSS).ravel().tolist(), scale=1)


def corner_colour(rgb: np.ndarray) -> np.ndarray:
    """The background colour: the per-channel median of the four corner pixels."""
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64)
    return np.median(corners, axis=0)


def trim(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Step 2: crop to the pixels farther than :data:`TRIM_DISTANCE` from ``background``
    (trimming every edge row and column that is all background); an image that is all
    background is kept whole."""
    distance2 = np.zeros(rgb.shape[:2], np.int32)  # channel by channel: 8 bytes a pixel
    for channel, value in enumerate(background.round().astype(np.int32)):
        distance2 += (rgb[..., channel].astype(np.int32) - value) ** 2
    far = distance2 > TRIM_DISTANCE**2
    rows, cols = np.flatnonzero(far.any(1)), np.flatnonzero(far.any(0))
    if not len(rows):
        return rgb
    return rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def subsample(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Step 3: the longest edge to ``size`` by keeping every k-th row and column (nearest
    neighbour), after averaging an image larger than a thumbnail down to thumbnail scale."""
    factor = max(image.size) // THUMBNAIL_EDGE
    if factor > 1:
        image = image.reduce(factor)
    scale = size / max(image.size)
    shape = tuple(max(1, round(edge * scale)) for edge in image.size)
    return image.resize(shape, Image.Resampling.NEAREST)


def sharpen(image: Image.Image) -> Image.Image:
    """Step 4: unsharp masking with a 3x3 Gaussian of sigma 1.0 (:data:`SHARPEN_KERNEL`).

    Why not PIL's ``UnsharpMask``: its ``radius`` is the Gaussian's sigma, approximated by box
    blurs over about three sigmas, and it cannot cut the kernel at radius 1 as the dataset's
    operator does; a 3x3 kernel is exactly "radius 1, sigma 1.0". Pixels on the image's edge
    are left as they are (PIL does not filter them).
    """
    return image.filter(SHARPEN_KERNEL)


def extend(image: Image.Image, colour: np.ndarray, size: int = IMAGE_SIZE) -> Image.Image:
    """Step 5: the shortest edge extended to ``size`` with ``colour``, the image centred."""
    canvas = Image.new("RGB", (size, size), tuple(int(round(c)) for c in colour))
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return canvas


def is_light(colour: np.ndarray) -> bool:
    """Whether a background colour is light (luma above half): a photo to negate."""
    return float(np.dot(colour, (0.299, 0.587, 0.114))) > 127.5


def check_invert(invert: object) -> None:
    """One ConfigError for a bad ``invert``, before any file is read (not one per image).
    ``1 in INVERT_CHOICES`` holds (1 == True), hence the type check."""
    if not isinstance(invert, bool | str) or invert not in INVERT_CHOICES:
        raise ConfigError(f"invert={invert!r} must be auto, true or false.")


def fashion_mnist_tile(
    image: np.ndarray, invert: bool | str = "auto", trim_edges: bool = True
) -> np.ndarray:
    """Any uint8 image, (H, W) gray or (H, W, 3) RGB -> uint8 (28, 28), light item on black,
    by the dataset's seven steps (see the module's docstring).

    ``invert``: ``"auto"`` negates (step 6) when the corner colour is light, True/False force
    it. ``trim_edges=False`` skips step 2. A 28x28 image that needs no negation is already a
    tile: it is used as it is (only made gray).
    """
    check_invert(invert)
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    background = corner_colour(rgb)
    negate = invert is True or (invert == "auto" and is_light(background))
    if rgb.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE) and not negate:
        return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))
    if trim_edges:
        rgb = trim(rgb, background)
    tile = subsample(Image.fromarray(np.ascontiguousarray(rgb)))
    tile = extend(sharpen(tile), background)
    if negate:
        tile = ImageOps.invert(tile)
    return np.asarray(tile.convert("L"), dtype=np.uint8)
