"""Calibration metrics against numpy, temperature scaling, and the run's predictions.npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fmnist.data import FashionMNISTDataModule
from fmnist.training.calibration import calibration_metrics, fit_temperature
from fmnist.training.load import load_classifier
from fmnist.training.predictions import load_predictions
from fmnist.training.run import train


def numpy_ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error by its definition: |accuracy - confidence| per
    equal-width confidence bin, weighted by the bin's share of the images."""
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs((predicted[inside] == labels[inside]).mean() - confidence[inside].mean())
            ece += inside.mean() * gap
    return float(ece)


def test_calibration_metrics_agree_with_numpy() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=generator) * 3
    labels = torch.randint(0, 10, (500,), generator=generator)
    for temperature in (1.0, 2.5):
        metrics = calibration_metrics(logits, labels, temperature)
        z = logits.double().numpy() / temperature
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = labels.numpy()
        assert metrics["ece"] == pytest.approx(numpy_ece(p, y), abs=1e-6)
        assert metrics["nll"] == pytest.approx(-np.log(p[np.arange(500), y]).mean(), rel=1e-9)
        assert metrics["brier"] == pytest.approx(((p - np.eye(10)[y]) ** 2).sum(1).mean(), rel=1e-9)


def test_fitted_temperature_recovers_the_true_one_and_keeps_the_argmax() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(20_000, 10, generator=generator) * 4
    labels = torch.multinomial((logits / 2.0).softmax(1), 1, generator=generator).squeeze(1)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(2.0, abs=0.1)
    before = calibration_metrics(logits, labels)
    after = calibration_metrics(logits, labels, temperature)
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]
    assert torch.equal((logits / temperature).argmax(1), logits.argmax(1))


QUICK = ["model.filters=[4,8]", "model.hidden=16", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null",
         "trainer.max_epochs=3"]  # fmt: skip


def test_a_run_calibrates_and_keeps_its_test_predictions(tiny_train_cfg, fake_data_dir) -> None:
    cfg = tiny_train_cfg(*QUICK)
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    saved = json.loads((run / "metrics.json").read_text())
    temperature = saved["temperature"]
    assert temperature > 0 and temperature != 1.0
    for name in ("ece", "nll", "brier"):
        assert saved[f"test/{name}"] >= 0 and saved[f"test/{name}_calibrated"] >= 0

    predictions = load_predictions(run / "predictions.npz")
    dm = FashionMNISTDataModule(root=str(fake_data_dir), download=False, search_system=False,
                                strict=False, val_size=40)  # fmt: skip
    dm.setup()
    test = dm.split("test")
    assert np.array_equal(predictions["labels"], test.labels.numpy())  # test-set order
    accuracy = (predictions["predicted"] == predictions["labels"]).mean()
    assert accuracy == pytest.approx(saved["test/acc"], abs=1e-6)  # torchmetrics: float32
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (predictions["labels"], predictions["predicted"]), 1)
    assert matrix.tolist() == saved["confusion_matrix"]

    module, _ = load_classifier(metrics["best_checkpoint"])  # the temperature went with it
    assert float(module.classifier.temperature) == pytest.approx(temperature, rel=1e-6)
    probabilities = module.predict_proba(test.images).numpy()
    np.testing.assert_allclose(probabilities, predictions["probabilities"], rtol=1e-4, atol=1e-6)
    raw = calibration_metrics(torch.log(torch.from_numpy(probabilities)).double() * temperature,
                              test.labels, temperature)  # fmt: skip
    assert raw["ece"] == pytest.approx(saved["test/ece_calibrated"], abs=1e-4)
