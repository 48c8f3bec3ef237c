"""Fashion-MNIST's own conversion of a product photo into a 28x28 tile, step by step.

:func:`fashion_mnist_tile` follows the seven steps of the dataset's paper (Xiao et al. 2017,
section 2) in order: read (``fmnist.inference.decode``, :func:`on_white`), :func:`trim`,
:func:`subsample`, :func:`sharpen`, :func:`extend`, negate, 8-bit grayscale. :func:`convert`
first makes a photo's own background black (see the comment above :data:`REMOVED`).
docs/photos-and-serving.md quotes the paper's steps and says why each constant is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from fmnist.data.classes import IMAGE_SIZE
from fmnist.errors import ConfigError

#: Step 2: background is within 5% of the maximum intensity of the corner colour (RGB distance).
TRIM_DISTANCE = 0.05 * 255
#: The thumbnails' long side: larger images are box-averaged to it, so step 3 does not alias.
THUMBNAIL_EDGE = 73
#: Step 4: a 3x3 Gaussian of sigma 1.0 (radius 1), row by row.
_GAUSS = np.exp(-np.add.outer(np.arange(-1, 2) ** 2, np.arange(-1, 2) ** 2) / 2.0)
_GAUSS /= _GAUSS.sum()
#: Unsharp masking, ``2 * image - blur(image)``, as one kernel ("increasing effect near outlines").
SHARPEN_KERNEL = ImageFilter.Kernel(
    (3, 3), (2 * np.pad([[1.0]], 1) - _GAUSS).ravel().tolist(), scale=1
)


def corner_colour(rgb: np.ndarray) -> np.ndarray:
    """The background colour: the per-channel median of the four corner pixels."""
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64)
    return np.median(corners, axis=0)


def trim(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Step 2: crop to the pixels farther than :data:`TRIM_DISTANCE` from ``background``; an
    image that is all background is kept whole."""
    distance2 = np.zeros(rgb.shape[:2], np.int32)  # channel by channel: 8 bytes a pixel
    for channel, value in enumerate(background.round().astype(np.int32)):
        distance2 += (rgb[..., channel].astype(np.int32) - value) ** 2
    far = distance2 > TRIM_DISTANCE**2
    rows, cols = np.flatnonzero(far.any(1)), np.flatnonzero(far.any(0))
    if not len(rows):
        return rgb
    return rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def subsample(
    image: Image.Image,
    size: int = IMAGE_SIZE,
    resample: Image.Resampling = Image.Resampling.NEAREST,
) -> Image.Image:
    """Step 3: the longest edge to ``size`` by keeping every k-th row and column (nearest
    neighbour), after averaging an image larger than a thumbnail down to thumbnail scale."""
    factor = max(image.size) // THUMBNAIL_EDGE
    if factor > 1:
        image = image.reduce(factor)
    scale = size / max(image.size)
    shape = tuple(max(1, round(edge * scale)) for edge in image.size)
    return image.resize(shape, resample)


def sharpen(image: Image.Image) -> Image.Image:
    """Step 4: unsharp masking with a 3x3 Gaussian of sigma 1.0 (:data:`SHARPEN_KERNEL`; PIL's
    ``UnsharpMask`` cannot cut it at radius 1). Edge pixels are left as they are."""
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
    ``1 in (True,)`` holds (1 == True), hence the type check."""
    if not isinstance(invert, bool | str) or invert not in ("auto", True, False):
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
    image = on_white(image)
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
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


# --- Backgrounds as people photograph them -------------------------------------------------
# The seven steps assume a white studio background, which negation turns black; any other
# stays grey. With ``invert="auto"`` :func:`convert` fits the background to the image's border
# (:func:`fit_border_surface`) and keeps the largest region standing out of it as the item,
# light on black whatever the background's colour. When that fails (:data:`NOT_SEPARATED`) the
# tile is the seven steps' guess, flagged out of distribution (docs/photos-and-serving.md).

#: The background was estimated and made black.
REMOVED = "removed"
#: A cut-out on a transparent background: its alpha channel gave the item (:func:`cutout_tile`).
CUTOUT = "transparent"
#: A 28x28 light-on-dark image: already a tile, used as it is.
TILE = "tile"
#: ``invert=true|false``: the dataset's seven steps, as asked, without estimating anything.
FORCED = "forced"
#: Why a background could not be separated (the tile is the seven steps' guess).
CLUTTERED = "not separated: the border is not one smooth background (clutter?)"
EVERY_EDGE = "not separated: the item touches every edge"
SEVERAL = "not separated: several items"
NOTHING = "not separated: no item stands out of the background"
NOT_SEPARATED = (CLUTTERED, EVERY_EDGE, SEVERAL, NOTHING)
#: The same in a few words (the contact sheet's captions).
SHORT = {
    CLUTTERED: "cluttered background",
    EVERY_EDGE: "item fills the frame",
    SEVERAL: "several items",
    NOTHING: "no item found",
}

#: The background is estimated on a copy box-averaged to a side in [WORK_SIDE, 2 x WORK_SIDE).
WORK_SIDE = 160
#: The border band the background is fitted on, as a share of the shorter side.
BORDER_SHARE = 0.04
#: Border pixels the surface is fitted on, at most (every k-th of the band).
MAX_BORDER_PIXELS = 1200
#: A border fitting worse than this (robust std of the distance, grey levels) is clutter.
CLUTTER_SIGMA = 18.0
#: A second region at least this share of the item's area: two items, not one.
SECOND_ITEM_SHARE = 0.25
#: The item must cover this share of the working image, else nothing was found.
MIN_ITEM_SHARE = 0.002
#: ``a`` in ``(1 + a) * image - a * blur(image)``, the new path's sharpening (1: step 4's kernel).
SHARPEN_AMOUNT = 1.0
#: Turns tried to set an item upright (degrees), and the share of its box area a turn must beat.
UPRIGHT_ANGLES = np.arange(-16, 16.5, 1.0)
UPRIGHT_GAIN = 0.95
#: Trim to the rows and columns where the item reaches this share of its peak contrast.
BOX_SHARE = 0.2
#: The new path averages down to 28 pixels (not step 3's skipping): noise and JPEG blocks go.
RESAMPLE = Image.Resampling.BOX


@dataclass(frozen=True)
class Conversion:
    """A tile and what its background was (:data:`REMOVED`, :data:`CUTOUT`, :data:`TILE`,
    :data:`FORCED`, or one of :data:`NOT_SEPARATED`)."""

    tile: np.ndarray  # uint8 (28, 28), light item on black
    background: str


def working_copy(rgb: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """``rgb`` box-averaged by an integer factor to a longest side below ``2 * side``,
    as float32 (PIL's ``reduce``: one pass in C)."""
    factor = max(rgb.shape[:2]) // side
    if factor > 1:
        reduced = Image.fromarray(np.ascontiguousarray(rgb)).reduce(factor)
        return np.asarray(reduced, dtype=np.float32)
    return rgb.astype(np.float32)


@dataclass(frozen=True)
class BorderFit:
    """The background surface fitted on the border: coefficients per channel (6, 3), the
    border's noise (robust standard deviation of the RGB distance to the surface) and the
    share of border pixels that are background."""

    coefficients: np.ndarray
    noise: float
    inliers: float

    def surface(self, shape: tuple[int, int]) -> np.ndarray:
        """The background over the whole image, float32 (H, W, 3), evaluated as
        ``a(y) + b(y) x + c x^2`` per channel: two passes over the image, not six."""
        height, width = shape
        x = np.linspace(-1, 1, width, dtype=np.float32)[None, :, None]
        y = np.linspace(-1, 1, height, dtype=np.float32)[:, None, None]
        c = self.coefficients.astype(np.float32)  # rows: 1, x, y, x^2, xy, y^2
        return (c[0] + c[2] * y + c[5] * y * y) + (c[1] + c[4] * y) * x + c[3] * x * x


def fit_border_surface(rgb: np.ndarray) -> BorderFit:
    """Least squares of a quadratic surface per channel on the border pixels (within
    :data:`BORDER_SHARE` of the shorter side of an edge), started from the
    candidate background that most border pixels agree with (:func:`_starting_keep`), then
    trimmed to the pixels within 3.5 robust standard deviations of the fit, so that an item
    touching the sides, or its shadow, does not pull the background towards it."""
    height, width = rgb.shape[:2]
    band = max(1, round(BORDER_SHARE * min(height, width)))
    border = np.ones((height, width), bool)
    border[band:-band, band:-band] = False
    ys, xs = np.nonzero(border)
    stride = max(1, len(ys) // MAX_BORDER_PIXELS)
    ys, xs = ys[::stride], xs[::stride]
    x, y = xs * (2 / max(width - 1, 1)) - 1, ys * (2 / max(height - 1, 1)) - 1
    # The quadratic surface's terms: a constant, a tilt, and a bowl or saddle (a vignette).
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1)
    values = rgb[ys, xs].astype(np.float64)
    keep = _starting_keep(design, values, x, y)
    for step in range(2):
        coefficients = _least_squares(design[keep], values[keep])
        residual = _distance(values, design @ coefficients)
        noise = 1.4826 * float(np.median(residual[keep])) / np.sqrt(3)  # per channel, robust
        if step == 0:
            keep = residual <= max(3.5 * np.sqrt(3) * noise, TRIM_DISTANCE)
    return BorderFit(coefficients, noise, float(keep.mean()))


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The surface's coefficients (6, channels) by the 6x6 normal equations (the terms are
    well conditioned on [-1, 1]; a tiny ridge keeps them solvable)."""
    gram = design.T @ design + 1e-9 * np.eye(design.shape[1])
    return np.linalg.solve(gram, design.T @ values)


def _distance(values: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Each border pixel's RGB distance to the fitted (or candidate) background."""
    return np.sqrt(((values - fitted) ** 2).sum(1))


def _starting_keep(
    design: np.ndarray, values: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """The border pixels the fit starts from: those near the half of the border closest to
    the all-pixel fit, or near one corner's colour, whichever candidate more pixels lie
    within :data:`TRIM_DISTANCE` of (ties: the all-pixel fit).

    The all-pixel fit alone is pulled towards an item that covers much of the border (a
    garment filling a product photo touches two or four sides, and then the item's colour
    was taken for the background); the corners are where a photo's background shows.
    """
    residual = _distance(values, design @ _least_squares(design, values))
    half = residual <= np.median(residual)
    candidates = [design @ _least_squares(design[half], values[half])]
    for sx, sy in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        corner = (x * sx > 0.8) & (y * sy > 0.8)
        if corner.any():
            candidates.append(np.median(values[corner], axis=0)[None, :])
    near = [_distance(values, c) <= TRIM_DISTANCE * np.sqrt(3) for c in candidates]
    within = near[int(np.argmax([n.sum() for n in near]))]  # equals: the first, the fit
    # No candidate that a tenth of the border agrees with (clutter, noise): the half nearest
    # the all-pixel fit, whose spread then says the border is no smooth background.
    return within if within.mean() >= 0.1 else half


def light_falloff(background: np.ndarray) -> np.ndarray:
    """The background's brightness over its mean, (H, W): under uneven light an item's
    contrast falls off with the light, and dividing by this undoes it. 1 on a near-black
    background, where the ratio would be noise."""
    luma = background @ np.array([0.299, 0.587, 0.114], np.float32)
    mean = float(luma.mean())
    if mean <= 24:
        return np.ones(luma.shape, np.float32)
    return np.clip(luma, mean / 3, mean * 3) / mean


def item_contrast(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Each pixel's RGB distance to the background there, in grey levels (a grey item on
    white gets ``255 - grey``), corrected for the light's falloff (:func:`light_falloff`)."""
    difference = rgb - background
    distance = np.sqrt(np.einsum("ijk,ijk->ij", difference, difference) / 3)
    return distance / light_falloff(background)


def projected_contrast(
    rgb: np.ndarray, background: np.ndarray, region: np.ndarray, threshold: float
) -> np.ndarray | None:
    """The contrast along the item's own colour direction (the mean difference to the
    background over ``region``), or None when the item is lighter than the background in
    parts and darker in others (then only the distance tells them apart). Noise adds to a
    distance whatever its sign but averages out along one direction."""
    difference = rgb - background
    direction = difference[region].mean(0)
    norm = float(np.linalg.norm(direction))
    if norm < 1e-6:
        return None
    projected = difference @ (direction / (norm * np.sqrt(3)))
    if (projected[region] < -threshold).mean() > 0.05:
        return None
    return np.clip(projected, 0, None) / light_falloff(background)


def item_region(contrast: np.ndarray, threshold: float) -> tuple[np.ndarray | None, str]:
    """The item's pixels (boolean) and :data:`REMOVED`, or None and why not: the largest
    connected region after a closing has joined an item's parts; much smaller regions are
    specks, one of comparable size is a second item."""
    from scipy import ndimage

    standing_out = contrast > threshold
    # A closing by a square (1.5% of the side: a sandal's straps), as two separable filters.
    width = 2 * max(1, round(0.015 * max(contrast.shape))) + 1
    joined = ndimage.minimum_filter(ndimage.maximum_filter(standing_out, width), width)
    labels, _ = ndimage.label(joined, structure=np.ones((3, 3), bool))  # 8-connected
    areas = np.bincount(labels.ravel())[1:]
    if not len(areas) or areas.max() < MIN_ITEM_SHARE * contrast.size:
        return None, NOTHING
    order = np.argsort(areas)[::-1]
    if len(areas) > 1 and areas[order[1]] >= SECOND_ITEM_SHARE * areas[order[0]]:
        return None, SEVERAL
    item = labels == order[0] + 1
    edges = (item[0].mean(), item[-1].mean(), item[:, 0].mean(), item[:, -1].mean())
    if min(edges) > 0.05:
        return None, EVERY_EDGE
    # Holes: the background's regions that do not reach the frame's edge (labelled again).
    outside, _ = ndimage.label(~item)  # 4-connected, SciPy's default structure
    open_to_edge = np.unique(
        np.concatenate([outside[0], outside[-1], outside[:, 0], outside[:, -1]])
    )
    return item | ~np.isin(outside, open_to_edge), REMOVED


def upright_angle(region: np.ndarray) -> float:
    """The turn (degrees, PIL's counter-clockwise) that sets an item upright: the one of
    :data:`UPRIGHT_ANGLES` whose bounding box is smallest, when it beats the box as it lies
    by :data:`UPRIGHT_GAIN`; else 0. Fashion-MNIST's items stand square in their tiles, so
    the smallest box is the upright one; only the leftmost and rightmost pixel of each row
    are needed (every corner of the convex hull is one of them)."""
    rows = np.flatnonzero(region.any(1))
    first = region[rows].argmax(1)
    last = region.shape[1] - 1 - region[rows, ::-1].argmax(1)
    ys = np.concatenate([rows, rows]).astype(np.float32)
    xs = np.concatenate([first, last]).astype(np.float32)
    angles = np.deg2rad(UPRIGHT_ANGLES)[:, None].astype(np.float32)
    cos, sin = np.cos(angles), np.sin(angles)
    u, v = xs * cos + ys * sin, ys * cos - xs * sin
    area = np.ptp(u, 1) * np.ptp(v, 1)
    best, level = int(area.argmin()), int(np.argmin(np.abs(UPRIGHT_ANGLES)))
    return float(UPRIGHT_ANGLES[best]) if area[best] < UPRIGHT_GAIN * area[level] else 0.0


def sharpen_float(tile: np.ndarray, amount: float) -> np.ndarray:
    """Step 4 on float contrast: ``(1 + amount) * tile - amount * blur(tile)`` with the 3x3
    Gaussian of sigma 1.0; edge pixels are left as they are, as PIL leaves them."""
    if amount == 0 or min(tile.shape) < 3:
        return tile
    from scipy import ndimage

    blurred = ndimage.correlate(tile, _GAUSS.astype(np.float32), mode="nearest")
    out = tile.copy()
    out[1:-1, 1:-1] = ((1 + amount) * tile - amount * blurred)[1:-1, 1:-1]
    return out


def separate_background(
    rgb: np.ndarray, trim_edges: bool = True, sharpen_amount: float = SHARPEN_AMOUNT
) -> Conversion | str:
    """The tile of an item on any smooth background (see the comment above :data:`REMOVED`),
    or the reason it cannot be separated (one of :data:`NOT_SEPARATED`)."""
    work = working_copy(rgb)
    fit = fit_border_surface(work)
    background = fit.surface(work.shape[:2])
    contrast = item_contrast(work, background)
    # Out of the noise: the dataset's 5% fuzz (in grey levels, TRIM_DISTANCE / sqrt 3) or
    # three of the border's robust standard deviations, whichever is larger.
    threshold = max(TRIM_DISTANCE / np.sqrt(3), 3.0 * fit.noise)
    region, status = item_region(contrast, threshold)
    if status != EVERY_EDGE and (fit.noise > CLUTTER_SIGMA or fit.inliers < 0.5):
        return CLUTTERED
    if region is None:
        return status
    projected = projected_contrast(work, background, region, threshold)
    if projected is None:  # both lighter and darker: the distance, less its noise
        projected = np.clip(contrast - 2.0 * fit.noise, 0, None)
    # Only the item: noise within its outline (a bag's handle shows the background), specks
    # and other regions stay black.
    item = np.where(region, projected, 0).astype(np.float32)
    return Conversion(item_tile(item, region, trim_edges, sharpen_amount), REMOVED)


def item_tile(
    item: np.ndarray, region: np.ndarray, trim_edges: bool, sharpen_amount: float
) -> np.ndarray:
    """The tile of an item's contrast (float, 0 outside ``region``): set upright, trimmed to
    its box, subsampled, sharpened, centred on black, brightest -> 255."""
    angle = upright_angle(region)
    if angle:  # turned on the table: set upright, as the dataset's items stand
        item = np.asarray(
            Image.fromarray(item).rotate(angle, Image.Resampling.BILINEAR, expand=True), np.float32
        )
        region = item > 0
    if trim_edges:
        # Rows and columns above BOX_SHARE of the peak: a soft shadow beside the item is left out.
        strong = region & (item > BOX_SHARE * np.percentile(item[region], 99))
        strong = strong if strong.any() else region
        rows, cols = np.flatnonzero(strong.any(1)), np.flatnonzero(strong.any(0))
        item = item[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    small = np.asarray(
        subsample(Image.fromarray(np.ascontiguousarray(item)), resample=RESAMPLE), np.float32
    )
    small = np.clip(sharpen_float(small, sharpen_amount), 0, None)
    tile = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    top, left = (IMAGE_SIZE - small.shape[0]) // 2, (IMAGE_SIZE - small.shape[1]) // 2
    tile[top : top + small.shape[0], left : left + small.shape[1]] = small
    peak = float(tile.max())
    if peak > 0:
        tile *= 255.0 / peak
    return np.clip(tile + 0.5, 0, 255).astype(np.uint8)


def on_white(image: np.ndarray) -> np.ndarray:
    """An RGBA image composited on white (the dataset's studio background); others as given."""
    if image.ndim != 3 or image.shape[-1] != 4:
        return image
    alpha = image[..., 3:].astype(np.float32) / 255
    return (image[..., :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)


def cutout_tile(
    rgba: np.ndarray, trim_edges: bool = True, sharpen_amount: float = SHARPEN_AMOUNT
) -> Conversion | str:
    """The tile of an item cut out on a transparent background, or why not (one of
    :data:`NOT_SEPARATED`): the alpha channel says where the item is, exactly, whatever its
    colour. Inside it, the contrast is the item's on white, as the dataset's studio photos
    were negated (a light-grey garment keeps its own shading, stretched as every tile is);
    an item as light as white shows its outline."""
    work = working_copy(rgba)
    alpha = work[..., 3] / 255
    white = np.full(work.shape[:2] + (3,), 255, np.float32)
    contrast = item_contrast(
        work[..., :3] * alpha[..., None] + white * (1 - alpha[..., None]), white
    )
    region, status = item_region(255 * alpha, TRIM_DISTANCE / np.sqrt(3))
    if region is None:
        return status
    item = np.where(region, contrast, 0).astype(np.float32)
    if item.max() < TRIM_DISTANCE / np.sqrt(3):  # as light as white: the outline is the item
        item = np.where(region, 255 * alpha, 0).astype(np.float32)
    return Conversion(item_tile(item, region, trim_edges, sharpen_amount), CUTOUT)


def convert(
    image: np.ndarray,
    invert: bool | str = "auto",
    trim_edges: bool = True,
    sharpen_amount: float = SHARPEN_AMOUNT,
) -> Conversion:
    """Any uint8 image, (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA -> its tile and what
    its background was.

    ``invert="auto"`` takes a transparent image's item from its alpha channel
    (:data:`CUTOUT`), else estimates the background and makes it black (see the comment above
    :data:`REMOVED`); a 28x28 image with dark corners is already a tile (:data:`TILE`).
    ``invert=True|False`` follows the dataset's seven steps with the negation forced
    (:data:`FORCED`), as does an image whose background cannot be separated, whose
    :attr:`Conversion.background` then says why.
    """
    check_invert(invert)
    if invert == "auto" and image.ndim == 3 and image.shape[-1] == 4:
        cutout = cutout_tile(image, trim_edges, sharpen_amount)
        if isinstance(cutout, Conversion):
            return cutout
    image = on_white(image)
    if invert != "auto":
        return Conversion(fashion_mnist_tile(image, invert, trim_edges), FORCED)
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    if rgb.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE) and not is_light(corner_colour(rgb)):
        return Conversion(fashion_mnist_tile(image, False, trim_edges), TILE)
    separated = separate_background(rgb, trim_edges, sharpen_amount)
    if isinstance(separated, Conversion):
        return separated
    return Conversion(fashion_mnist_tile(image, "auto", trim_edges), separated)
