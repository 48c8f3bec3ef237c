"""Done-when check of the conversion: test items re-rendered as people's photos score within
3 points of the model's accuracy on the raw tiles (bench/photos.py measures the same on a
fully trained model for the README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.photos import photo_accuracies, seeded_sample
from fmnist.data import load_fashion_mnist
from fmnist.training.run import train

#: A short speedrun (150 of its 430 steps) that keeps its final weights as last.ckpt.
SHORT_SPEEDRUN = [
    "experiment=speedrun",
    "callbacks=default",
    *(
        f"callbacks.{name}=null"
        for name in (
            "model_checkpoint",
            "activation_capture",
            "permutation_importance",
            "learning_curves",
            "lr_monitor",
            "progress_bar",
            "model_summary",
        )
    ),  # fmt: skip
    "trainer.max_steps=150",
    "test=false",
]


@pytest.mark.real_data
@pytest.mark.slow
def test_photos_and_off_centre_canvases_score_like_the_raw_tiles(tmp_path: Path) -> None:
    from conftest import compose_config

    train(compose_config("train", SHORT_SPEEDRUN, tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    raw = load_fashion_mnist()
    tiles, labels = seeded_sample(raw.test_images, raw.test_labels, 200)
    accuracy = photo_accuracies(ckpt, tiles, labels, tmp_path / "images")
    assert accuracy["raw_tiles"] > 0.75  # a real model, if a short-trained one
    assert abs(accuracy["photos_112"] - accuracy["raw_tiles"]) <= 0.03
    assert abs(accuracy["off_centre_224"] - accuracy["raw_tiles"]) <= 0.03
    assert accuracy["off_centre_224_untrimmed"] < 0.5  # without trimming: near chance
