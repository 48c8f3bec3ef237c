"""Items photographed on the backgrounds people use: the conversion makes the background black
and keeps the item (fmnist.inference.convert.convert), or says why it cannot."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from bench.stand_ins import jpeg_bytes, scene
from fmnist.inference.convert import (
    CLUTTERED,
    EVERY_EDGE,
    FORCED,
    NOT_SEPARATED,
    NOTHING,
    REMOVED,
    SEVERAL,
    TILE,
    convert,
)
from fmnist.inference.images import Prediction, load_inputs, write_csv
from fmnist.inference.ood import mark_ood

BENCH = Path(__file__).resolve().parents[1] / "bench"


def garment() -> np.ndarray:
    """A synthetic tile as the dataset's are: a textured shirt-like item light on black,
    filling the 28 rows, centred; its brightest pixel 255."""
    y, x = np.mgrid[0:28, 0:28]
    body = (np.abs(x - 13.5) < 7) & (y >= 0)
    sleeves = (np.abs(x - 13.5) < 12) & (y < 11)
    item = (body | sleeves).astype(float)
    texture = 150 + 60 * np.sin(x / 2.0) * np.cos(y / 3.0) + 45 * (y < 4)
    return np.clip(item * texture, 0, 255).astype(np.uint8)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def far_background(tile: np.ndarray) -> np.ndarray:
    """The tile's background pixels more than a pixel from the item."""
    return ~ndimage.binary_dilation(tile > 0, iterations=2)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg_bytes(image, quality))).convert("RGB"))


KINDS = {
    "white": {},
    "black, light item": {"background": (0, 0, 0)},
    "dark grey, light item": {"background": (60, 60, 60)},
    "mid grey": {"background": (128, 128, 128)},
    "mid grey, light item": {"background": (128, 128, 128), "ink": (255, 255, 255)},
    "light grey": {"background": (200, 200, 200)},
    "blue": {"background": (40, 90, 180)},
    "beige, red item": {"background": (228, 214, 186), "ink": (170, 40, 30)},
    "gradient": {"gradient": 0.5},
    "vignette": {"vignette": 0.4},
    "grey and gradient": {"background": (170, 170, 170), "gradient": 0.4},
    "soft shadow": {"shadow": 0.15},
    "sensor noise": {"background": (150, 150, 150), "noise": 8.0},
    "small, off-centre": {"cover": (0.3, 0.3)},
    "large": {"cover": (0.9, 0.9)},
    "turned 12 degrees": {"rotation": 12.0},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_item_on_each_background_becomes_the_tile_it_was(kind: str) -> None:
    tile = garment()
    rng = np.random.default_rng(0)
    photo = scene(tile, rng, **KINDS[kind])
    converted = convert(photo)
    assert converted.background == REMOVED
    assert correlation(converted.tile, tile) >= 0.9, kind
    background = converted.tile[far_background(tile)]
    # A soft shadow's darkest part beside the item stays in the tile, faint
    # (docs/photos-and-serving.md).
    assert background.mean() <= 2 and np.percentile(background, 99) <= (
        25 if "shadow" in kind else 8
    )
    assert converted.tile.max() == 255  # stretched to the dataset's range


def test_a_jpeg_of_an_item_on_grey_keeps_its_background_black() -> None:
    tile = garment()
    photo = jpeg(scene(tile, np.random.default_rng(1), background=(170, 170, 170)), 40)
    converted = convert(photo)
    assert correlation(converted.tile, tile) >= 0.9
    assert converted.tile[far_background(tile)].mean() <= 2


def test_a_dark_background_is_not_negated() -> None:
    """A light item on black comes out light on black: the same tile as on white."""
    tile = garment()
    on_black = convert(scene(tile, np.random.default_rng(0), background=(0, 0, 0))).tile
    on_white = convert(scene(tile, np.random.default_rng(0))).tile
    assert correlation(on_black, on_white) >= 0.99
    assert on_black[14, 14] > 100 and on_black[0, 0] == 0


def test_backgrounds_that_cannot_be_separated_say_why() -> None:
    rng = np.random.default_rng(0)
    tile = garment()
    clutter = rng.integers(0, 256, (200, 200, 3), np.uint8)
    assert convert(clutter).background == CLUTTERED
    assert convert(clutter).background in NOT_SEPARATED
    two = np.full((200, 300, 3), 230, np.uint8)
    for left in (20, 170):
        two[40:150, left : left + 110] = 255 - np.asarray(
            Image.fromarray(tile).resize((110, 110)).convert("RGB")
        )
    two = np.minimum(two, 230)
    assert convert(two).background == SEVERAL
    close_up = scene(tile, rng, cover=(0.9, 0.9))[30:-30, 30:-30]  # the item crosses every edge
    assert (
        convert(close_up).background in NOT_SEPARATED
    )  # the border is mostly item: no background to fit
    framed = np.full((120, 120, 3), 255, np.uint8)
    framed[:, 50:70] = framed[50:70] = 30  # a cross touching every edge, background around
    assert convert(framed).background == EVERY_EDGE
    assert convert(np.full((90, 90, 3), 128, np.uint8)).background == NOTHING


def test_tiles_and_forced_inversion_keep_the_seven_steps() -> None:
    tile = garment()
    assert convert(tile).background == TILE
    assert np.array_equal(convert(tile).tile, tile)
    photo = scene(tile, np.random.default_rng(0))
    assert convert(photo, invert=True).background == FORCED


class _Detector:
    threshold = 10.0


def test_an_unseparated_background_is_flagged_and_written_to_the_csv(tmp_path: Path) -> None:
    predictions = [
        Prediction("a.png", 0, 0.9, [("T-shirt/top", 0.9)], background=REMOVED),
        Prediction("b.png", 0, 0.9, [("T-shirt/top", 0.9)], background=CLUTTERED),
    ]
    mark_ood(predictions, torch.tensor([0.0, 0.0]), _Detector())
    assert [p.ood for p in predictions] == [False, True]
    rows = write_csv(predictions, tmp_path / "p.csv").read_text().splitlines()
    assert rows[0].endswith(",ood_score,ood,background")
    assert rows[1].endswith(f",false,{REMOVED}") and CLUTTERED in rows[2]


def test_load_inputs_reports_each_images_background(tmp_path: Path) -> None:
    tile = garment()
    Image.fromarray(scene(tile, np.random.default_rng(0), background=(90, 90, 90))).save(
        tmp_path / "a_grey.png"
    )
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100, 3), np.uint8)).save(
        tmp_path / "b_noise.png"
    )
    inputs = load_inputs([tmp_path])
    assert inputs.backgrounds == [REMOVED, CLUTTERED]
    assert correlation(inputs.images[0], tile) >= 0.9


@pytest.mark.real_data
@pytest.mark.slow
def test_the_photo_suite_recomputes_the_benchs_accuracies(tmp_path: Path) -> None:
    """The suite on the checkpoint bench/photos.json was measured on (or
    ``FMNIST_PHOTOS_CKPT``): the same accuracies, every condition within 3 points of the raw
    tiles but those docs/photos-and-serving.md names as missed."""
    from bench.photos import photo_suite, seeded_sample
    from fmnist.data import load_fashion_mnist

    recorded = json.loads((BENCH / "photos.json").read_text())
    ckpt = os.environ.get("FMNIST_PHOTOS_CKPT", recorded["ckpt"])
    if not Path(ckpt).is_file():
        pytest.skip(f"{ckpt} not found: set FMNIST_PHOTOS_CKPT to a trained checkpoint")
    raw = load_fashion_mnist()
    n = recorded["suite"]["images"]
    tiles, labels = seeded_sample(raw.test_images, raw.test_labels, n)
    suite, _ = photo_suite(ckpt, tiles, labels, tmp_path)
    same_model = ckpt == recorded["ckpt"]
    for name, row in suite["conditions"].items():
        if same_model and name in recorded["suite"]["conditions"]:  # a new one: not measured yet
            assert row["accuracy"] == pytest.approx(
                recorded["suite"]["conditions"][name]["accuracy"]
            )
        if name not in MISSED:
            assert row["points_below_raw"] <= 3.0, name
        if row["ood_flagged"] is not None:
            assert row["ood_flagged"] <= OOD_CEILING, name


#: Conditions that miss the 3-point target on the default model (docs/photos-and-serving.md,
#: "Photos on any background"): the strong shadow (a dark halo the trim keeps beside the item).
MISSED: set[str] = {"shadow 30%"}
#: The flag rate the suite holds today. The target is 5%; 18 conditions flag 11 of the 200
#: items (5.5%, 6% once), where the flag's threshold flags ~4% of in-distribution images by
#: design (96% of validation passes): docs/photos-and-serving.md names the miss.
OOD_CEILING = 0.06
