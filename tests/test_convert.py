"""Fashion-MNIST's conversion, step by step, on small images whose right answer is known."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.stand_ins import cutout
from fmnist.errors import ConfigError
from fmnist.inference.convert import (
    CUTOUT,
    NOT_SEPARATED,
    SHARPEN_KERNEL,
    TRIM_DISTANCE,
    convert,
    corner_colour,
    extend,
    fashion_mnist_tile,
    on_white,
    sharpen,
    subsample,
    trim,
)
from fmnist.inference.decode import decode_image
from fmnist.inference.images import load_inputs


def white(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 255, np.uint8)


def test_trim_measures_closeness_in_rgb_within_five_percent() -> None:
    photo = white(60, 90)
    photo[:, :, :] = (253, 253, 253)  # the dataset's #fdfdfd background
    photo[10:20, 30:50] = (20, 20, 20)  # the item
    photo[40, 5] = (248, 248, 248)  # distance sqrt(3) * 5 = 8.7 <= 12.75: background
    photo[50, 80] = (253, 253, 240)  # distance 13 > 12.75: kept, though its gray value is 251
    assert round(TRIM_DISTANCE, 6) == 12.75
    background = corner_colour(photo)
    assert background.tolist() == [253, 253, 253]
    trimmed = trim(photo, background)
    assert trimmed.shape == (41, 51, 3)  # rows 10..50, columns 30..80
    assert trimmed[0, 0].tolist() == [20, 20, 20] and trimmed[-1, -1].tolist() == [253, 253, 240]
    assert trim(white(5, 7), np.array([255.0, 255, 255])).shape == (5, 7, 3)  # nothing: kept


def test_subsample_skips_rows_and_columns_after_averaging_to_thumbnail_scale() -> None:
    stripes = np.zeros((40, 56), np.uint8)
    stripes[:, 1::2] = 255  # odd columns white: keeping every other column keeps one colour
    small = np.asarray(subsample(Image.fromarray(stripes)))
    assert small.shape == (20, 28) and len(np.unique(small)) == 1
    big = np.zeros((1460, 730), np.uint8)  # 20x the 73-pixel thumbnail: averaged first
    big[:, 1::2] = 255
    averaged = np.asarray(subsample(Image.fromarray(big)))
    assert averaged.shape == (28, 14) and np.abs(averaged.astype(int) - 128).max() <= 1


def test_sharpen_is_an_unsharp_mask_with_a_3x3_gaussian_of_sigma_one() -> None:
    gauss = np.exp(-np.add.outer([1, 0, 1], [1, 0, 1]) / 2.0)
    gauss /= gauss.sum()
    expected_kernel = -gauss
    expected_kernel[1, 1] += 2.0
    np.testing.assert_allclose(SHARPEN_KERNEL.filterargs[3], expected_kernel.ravel(), atol=1e-6)
    flat = Image.new("RGB", (9, 9), (90, 90, 90))
    assert np.asarray(sharpen(flat)).tolist() == np.asarray(flat).tolist()  # flat: unchanged
    spot = np.full((9, 9, 3), 100, np.uint8)
    spot[4, 4] = 120  # a brighter pixel: it is raised, its neighbours lowered
    out = np.asarray(sharpen(Image.fromarray(spot))).astype(int)[:, :, 0]
    assert out[4, 4] == round(100 + 20 * expected_kernel[1, 1]) == 136
    assert out[4, 3] == round(100 + 20 * expected_kernel[1, 0]) == 98
    assert out[3, 3] == round(100 + 20 * expected_kernel[0, 0]) == 98 and out[0, 0] == 100


def test_extend_centres_the_item_on_the_background_colour() -> None:
    item = Image.new("RGB", (10, 28), (0, 0, 0))
    square = np.asarray(extend(item, np.array([250.0, 250.0, 250.0])))
    dark_columns = np.flatnonzero(square[:, :, 0].max(0) == 0)
    assert square.shape == (28, 28, 3) and dark_columns.tolist() == list(range(9, 19))
    assert square[0, 0].tolist() == [250, 250, 250]


def test_photo_with_margins_becomes_a_centred_tile_light_on_black() -> None:
    photo = white(120, 200)
    photo[70:90, 20:80] = (30, 60, 90)  # a 20x60 item, off-centre, covering a third of the frame
    tile = fashion_mnist_tile(photo)
    assert tile.shape == (28, 28) and tile.dtype == np.uint8
    rows = np.flatnonzero(tile.max(1) > 128)
    cols = np.flatnonzero(tile.max(0) > 128)
    assert rows.tolist() == list(range(9, 18)) and cols.tolist() == list(range(28))
    assert tile[0].max() == 0 and tile[-1].max() == 0  # extended with white, negated: black
    whole = fashion_mnist_tile(photo, trim_edges=False)  # without trimming the item stays small
    assert (whole > 128).sum() < (tile > 128).sum() / 4
    kept = fashion_mnist_tile(photo, invert=False)  # not negated: dark item on light
    assert kept[0, 0] == 255 and kept.min() < 100
    with pytest.raises(ConfigError, match="invert"):
        fashion_mnist_tile(photo, invert="yes")


def test_a_fashion_mnist_tile_is_used_as_it_is() -> None:
    tile = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    tile[0, :] = tile[-1, :] = tile[:, 0] = tile[:, -1] = 0  # dark corners: already negated
    assert np.array_equal(fashion_mnist_tile(tile), tile)
    assert np.array_equal(fashion_mnist_tile(np.repeat(tile[..., None], 3, -1)), tile)


def test_transparency_is_kept_and_gives_the_item_exif_orientation_is_applied(tmp_path) -> None:
    rgba = np.zeros((30, 50, 4), np.uint8)  # transparent everywhere...
    rgba[10:20, 10:40] = (0, 0, 0, 255)  # ...but an opaque black item
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    (decoded,) = decode_image(tmp_path / "cutout.png").frames
    assert np.array_equal(decoded, rgba)  # the alpha channel reaches the conversion
    assert on_white(decoded)[0, 0].tolist() == [255, 255, 255]
    assert on_white(decoded)[15, 15].tolist() == [0, 0, 0]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    buffer = io.BytesIO()
    Image.fromarray(np.full((30, 50, 3), 200, np.uint8)).save(buffer, "JPEG", exif=exif)
    (tmp_path / "sideways.jpg").write_bytes(buffer.getvalue())
    inputs = load_inputs([tmp_path])
    assert [s.rsplit("/", 1)[-1] for s in inputs.sources] == ["cutout.png", "sideways.jpg"]
    cutout = inputs.images[0]
    assert cutout[0].max() == 0 and cutout[14].min() > 200  # 10x30 item -> 9x28 rows 9..17
    assert decode_image(buffer.getvalue()).frames[0].shape == (50, 30, 3)


def test_a_light_item_cut_out_on_transparency_is_found_by_its_alpha() -> None:
    from test_backgrounds import garment

    tile = garment()
    dark = convert(cutout(tile, ink=(0, 0, 0)))
    light = cutout(tile, ink=(230, 230, 230))  # a light-grey garment: 25 levels on white
    found = convert(light)
    assert dark.background == found.background == CUTOUT
    # the same tile as the dark garment's (contrast is stretched): its shading kept
    assert np.abs(found.tile.astype(int) - dark.tile).max() <= 6
    assert convert(on_white(light)).background in NOT_SEPARATED  # on white it is lost
    white_item = convert(cutout(tile, ink=(255, 255, 255)))  # only its outline tells
    assert white_item.background == CUTOUT
    assert np.mean((white_item.tile > 127) == (dark.tile > 0)) > 0.95  # its silhouette
