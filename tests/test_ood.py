"""The out-of-distribution score: its parts on known numbers, its fit on the validation split,
where it is kept (never beside the checkpoint), and the flag in predict's output."""

from __future__ import annotations

import csv
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from bench.stand_ins import digits, uniform_noise, write_pngs
from fmnist.checkpoint import read_checkpoint
from fmnist.data import load_fashion_mnist
from fmnist.files import write_torch
from fmnist.inference.images import to_predictions
from fmnist.inference.ood import (
    OOD_KEY,
    cache_path,
    class_statistics,
    classify,
    detector_for,
    energy,
    fit_detector,
    load_detector,
    mahalanobis,
    predict_with_ood,
)
from fmnist.inference.predict import predict
from fmnist.training.load import load_classifier


def ood_cfg(data_dir: Path, **extra) -> OmegaConf:
    base = {"enabled": True, "data_root": str(data_dir), "search_system": False}
    return OmegaConf.create({**base, "strict": False, "pass_rate": 0.9, **extra})


def test_energy_and_mahalanobis_on_known_numbers() -> None:
    logits = torch.tensor([[0.0, 0.0], [10.0, 0.0]], dtype=torch.double)
    expected = [-np.log(2.0), -(10 + np.log1p(np.exp(-10.0)))]
    np.testing.assert_allclose(energy(logits).numpy(), expected)
    means = torch.tensor([[0.0, 0.0], [4.0, 0.0]], dtype=torch.double)
    precision = torch.diag(torch.tensor([1.0, 0.25], dtype=torch.double))  # variances 1 and 4
    features = torch.tensor([[1.0, 0.0], [3.0, 4.0], [0.0, -2.0]], dtype=torch.double)
    # nearest class mean, with the second axis counted at half its length
    np.testing.assert_allclose(mahalanobis(features, means, precision).numpy(), [1, 5**0.5, 1])


def test_class_statistics_recover_means_and_shared_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(4000)
    true_means = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], dtype=torch.double)
    scale = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=torch.double)  # covariance S S'
    noise = torch.randn(len(labels), 2, generator=generator, dtype=torch.double)
    means, precision = class_statistics(true_means[labels] + noise @ scale.T, labels, 3)
    torch.testing.assert_close(means, true_means, atol=0.15, rtol=0)  # 4 standard errors
    torch.testing.assert_close(torch.linalg.inv(precision), scale @ scale.T, atol=0.2, rtol=0)


def test_logits_from_the_captured_features_are_the_networks(tiny_checkpoint, fake_data_dir):
    module, _ = load_classifier(tiny_checkpoint)
    images = load_fashion_mnist(fake_data_dir, strict=False, search_system=False).test_images
    # Under TTA every pass's features are averaged, like the logits.
    for flip, shift in ((False, 0), (True, 0), (True, 1)):
        module.classifier.tta_flip, module.classifier.tta_shift = flip, shift
        probabilities, logits, features = classify(module, images[:50], batch_size=16)
        with torch.no_grad():
            expected = module(images[:50]).double()
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(probabilities, module.predict_proba(images[:50]))
        assert features.shape == (50, module.net.classifier[-1].in_features)


def test_threshold_passes_the_share_of_validation_images(tiny_checkpoint, fake_data_dir):
    module, settings = load_classifier(tiny_checkpoint)
    from fmnist.data import FashionMNISTDataModule

    data = FashionMNISTDataModule(
        fake_data_dir, download=False, search_system=False, strict=False, **settings
    )
    train, val = data.split("train"), data.split("val")
    detector = fit_detector(module, (train.images, train.labels), val.images, pass_rate=0.9)
    _, val_scores = predict_with_ood(module, detector, val.images, 16)
    assert (val_scores <= detector.threshold).double().mean() == pytest.approx(0.9, abs=0.03)
    assert abs(float(val_scores.mean())) < 1e-6  # the two standardized parts: mean 0 on val
    strangers = torch.from_numpy(np.concatenate([uniform_noise(50), digits()[:50]]))
    _, stranger_scores = predict_with_ood(module, detector, strangers, 16)
    assert (stranger_scores > detector.threshold).all()


def test_statistics_are_cached_by_checksum_never_beside_the_checkpoint(
    tiny_checkpoint, fake_data_dir, tmp_path, caplog
) -> None:
    models = tmp_path / "models"  # as a read-only mount: nothing may be written there
    models.mkdir()
    ckpt = models / "model.ckpt"
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    module, settings = load_classifier(ckpt)
    cache = tmp_path / "cache"
    detector = detector_for(ckpt, module, settings, ood_cfg(fake_data_dir, cache_dir=str(cache)))
    assert sorted(p.name for p in models.iterdir()) == ["model.ckpt"]
    path = cache_path(cache, detector.weights_sha256)
    assert sorted(cache.iterdir()) == [path]
    again = load_detector(path, detector.weights_sha256)
    assert again is not None and again.threshold == detector.threshold
    assert load_detector(path, "other weights") is None
    missing = ood_cfg(tmp_path / "no_data", cache_dir=str(cache))  # read from the cache
    assert detector_for(ckpt, module, settings, missing).threshold == detector.threshold
    path.write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING):
        refitted = detector_for(
            ckpt, module, settings, ood_cfg(fake_data_dir, cache_dir=str(cache))
        )
    assert "Ignoring" in caplog.text and refitted.threshold == pytest.approx(detector.threshold)
    path.unlink()
    with caplog.at_level(logging.WARNING):
        assert detector_for(ckpt, module, settings, missing) is None
    assert "No OOD flag" in caplog.text and "not found" in caplog.text
    assert detector_for(ckpt, module, settings, ood_cfg(fake_data_dir, enabled=False)) is None


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_flag(
    tiny_checkpoint, fake_data_dir, tmp_path, caplog, monkeypatch
) -> None:
    import fmnist.inference.ood as ood
    from fmnist.errors import OutputDirError

    module, settings = load_classifier(tiny_checkpoint)
    (tmp_path / "a_file").write_text("")
    not_a_folder = ood_cfg(fake_data_dir, cache_dir=str(tmp_path / "a_file" / "cache"))
    with caplog.at_level(logging.WARNING):
        detector = detector_for(tiny_checkpoint, module, settings, not_a_folder)
    assert detector is not None and "Could not cache the OOD statistics" in caplog.text

    def read_only(path, obj):  # what the atomic writer raises on a read-only mount
        raise OutputDirError(f"Cannot write {path}: Read-only file system")

    monkeypatch.setattr(ood, "write_torch", read_only)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = detector_for(
            tiny_checkpoint,
            module,
            settings,
            ood_cfg(fake_data_dir, cache_dir=str(tmp_path / "ro")),
        )
    assert again.threshold == detector.threshold and "Read-only file system" in caplog.text


def test_statistics_stored_in_the_checkpoint_travel_with_it(
    tiny_checkpoint, fake_data_dir, tmp_path
) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    module, settings = load_classifier(ckpt)
    fitted = detector_for(ckpt, module, settings, ood_cfg(fake_data_dir))
    checkpoint = read_checkpoint(ckpt)  # the statistics written into the checkpoint itself
    checkpoint[OOD_KEY] = asdict(fitted)
    write_torch(ckpt, checkpoint)
    module, settings = load_classifier(ckpt)  # the checkpoint still loads, same weights
    no_data = ood_cfg(tmp_path / "no_data")  # nothing to fit on, no cache: read from it
    stored = detector_for(ckpt, module, settings, no_data)
    assert stored.threshold == fitted.threshold and torch.equal(stored.means, fitted.means)


def test_predict_writes_the_score_and_flag(tiny_checkpoint, fake_data_dir, tmp_path) -> None:
    raw = load_fashion_mnist(fake_data_dir, strict=False, search_system=False)
    folder = tmp_path / "images"
    write_pngs([raw.test_images[0].numpy(), uniform_noise(1)[0]], folder, "image")
    cfg = OmegaConf.create(
        {
            "ckpt": str(tiny_checkpoint),
            "images": str(folder),
            "invert": "auto",
            "trim": True,
            "batch_size": 8,
            "top_k": 3,
            "output": str(tmp_path / "p.csv"),
            "print_limit": 5,
            "progress": False,
            "ood": ood_cfg(fake_data_dir),
        }
    )
    item, noise = predict(cfg)
    assert item.label == int(raw.test_labels[0]) and item.ood is False
    assert noise.ood is True and noise.ood_score > item.ood_score
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["ood"] for r in rows] == ["false", "true"]
    assert float(rows[1]["ood_score"]) == pytest.approx(noise.ood_score, abs=1e-4)
    assert to_predictions(["x"], torch.tensor([[1.0, 0.0]]))[0].ood is None  # no detector
