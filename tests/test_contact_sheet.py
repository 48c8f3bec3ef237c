"""contact_sheet=true: each image's thumbnail, its tile and its top classes in one PNG."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from bench.stand_ins import as_photo
from fmnist.inference.contact_sheet import THUMBNAIL_SIZE, contact_sheet, originals
from fmnist.inference.predict import predict


def test_originals_are_read_again_per_file_and_index(tmp_path) -> None:
    stack = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "stack.npy", stack)
    photo = np.zeros((400, 200, 3), np.uint8)
    photo[:, :, 0] = 200
    Image.fromarray(photo).save(tmp_path / "photo.png")
    tiles = [np.full((28, 28), 7, np.uint8)] * 3
    sources = [f"{tmp_path}/stack.npy[2]", f"{tmp_path}/photo.png", f"{tmp_path}/gone.png"]
    thumbs = originals(sources, tiles)
    assert np.array_equal(thumbs[0], stack[2])  # small images stay as they are
    assert thumbs[1].shape == (THUMBNAIL_SIZE, THUMBNAIL_SIZE // 2, 3)
    assert thumbs[1][0, 0].tolist() == [200, 0, 0]
    assert np.array_equal(thumbs[2], tiles[2])  # unreadable now: the tile stands in


def test_sheet_shows_top_classes_and_flags() -> None:
    tile = np.zeros((28, 28), np.uint8)
    tops = [[("Bag", 0.9), ("Coat", 0.06), ("Shirt", 0.01)], [("Sandal", 0.5), ("Bag", 0.3)]]
    figure = contact_sheet([tile, tile], [tile, tile], tops, ["a.png", "b.png"], [False, True])
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    captions = [ax.get_xlabel() for ax in figure.axes]
    labels = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
    assert {"0.90", "0.06", "0.01", "0.50", "0.30"} <= set(texts)
    assert {"a.png", "b.png", "model input", "model input, OOD"} <= set(captions)
    assert {"Bag", "Coat", "Shirt", "Sandal"} <= set(labels)


def test_predict_writes_the_contact_sheet(tiny_checkpoint, tmp_path) -> None:
    tile = np.zeros((28, 28), np.uint8)
    tile[7:13, 17:23] = 230  # the synthetic class-3 square
    Image.fromarray(as_photo(tile)).save(tmp_path / "square.png")
    cfg = OmegaConf.create(
        {
            "ckpt": str(tiny_checkpoint),
            "images": str(tmp_path / "square.png"),
            "batch_size": 8,
            "top_k": 3,
            "output": None,
            "print_limit": 5,
            "progress": False,
            "contact_sheet": True,
            "contact_sheet_limit": 10,
            "paths": {"output_dir": str(tmp_path / "run")},
        }
    )
    (prediction,) = predict(cfg)
    with Image.open(tmp_path / "run" / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 400 and sheet.height > 100
    assert prediction.ood is None  # no ood config: predicted without the flag
