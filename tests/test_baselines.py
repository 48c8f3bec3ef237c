"""Baselines: their inputs are the networks' inputs, their metrics are scikit-learn's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from sklearn import metrics as skm
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from bench.synthetic import SYNTHETIC_DATA_OVERRIDES
from fmnist.analysis import baselines
from fmnist.data import CLASS_NAMES, FashionMNISTDataModule
from fmnist.errors import ConfigError
from fmnist.metrics import classification_report
from fmnist.models.preprocess import Preprocess
from fmnist.tasks.baselines import training_subset
from fmnist.training.predictions import load_predictions
from tests.conftest import compose_config

QUICK = ["task.classifiers.random_forest.estimator.n_estimators=10",
         "task.classifiers.random_forest.estimator.n_jobs=1",
         "task.classifiers.knn.estimator.n_jobs=1"]  # fmt: skip


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny fits gain nothing from threads on a shared, loaded machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def run_baselines(output: Path, data_dir: Path, *overrides: str) -> Path:
    from fmnist.tasks import run_analysis

    overrides = (*SYNTHETIC_DATA_OVERRIDES, "task=baselines", *QUICK, *overrides)
    cfg = compose_config("analyze", list(overrides), output, data_dir)
    GlobalHydra.instance().clear()
    return run_analysis(cfg)


def assert_matches_sklearn_report(saved: dict, labels: np.ndarray, predicted: np.ndarray) -> None:
    expected = skm.classification_report(
        labels, predicted, labels=range(10), target_names=CLASS_NAMES, output_dict=True,
        zero_division=0,
    )  # fmt: skip
    assert saved["test/acc"] == pytest.approx(skm.accuracy_score(labels, predicted))
    for average in ("macro", "weighted"):
        for metric, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert saved[f"test/{metric}_{average}"] == pytest.approx(
                expected[f"{average} avg"][key]
            )
    for name in CLASS_NAMES:
        row = saved["per_class"][name]
        assert row["precision"] == pytest.approx(expected[name]["precision"])
        assert row["recall"] == pytest.approx(expected[name]["recall"])
        assert row["f1"] == pytest.approx(expected[name]["f1-score"])
        assert row["support"] == expected[name]["support"]
    assert saved["confusion_matrix"] == skm.confusion_matrix(labels, predicted).tolist()


def test_classification_report_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 500)
    predicted = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 9, 500))  # no 9s
    report = classification_report(torch.from_numpy(predicted), torch.from_numpy(labels),
                                   CLASS_NAMES)  # fmt: skip
    assert_matches_sklearn_report(report, labels, predicted)


def test_baselines_task_on_tiny_data(fake_data_dir, tmp_path) -> None:
    out = tmp_path / "run"
    report = run_baselines(
        out, fake_data_dir, "task.only=[logistic,random_forest,knn]", "task.samples=100"
    ).read_text()
    dm = FashionMNISTDataModule(root=str(fake_data_dir), download=False, search_system=False,
                                strict=False, val_size=40)  # fmt: skip
    dm.setup()
    test_labels = dm.split("test").labels.numpy()
    for name in ("logistic", "random_forest", "knn"):
        saved = json.loads((out / "baselines" / name / "metrics.json").read_text())
        predictions = load_predictions(out / "baselines" / name / "predictions.npz")
        assert np.array_equal(predictions["labels"], test_labels)
        assert_matches_sklearn_report(saved, test_labels, predictions["predicted"])
        assert saved["baseline"]["train_images"] == 100
        assert saved["monitor"] == {"name": "val/acc", "mode": "max", "best": saved["val/acc_best"]}
        np.testing.assert_allclose(predictions["probabilities"].sum(1), 1, atol=1e-5)
        assert f"| {name} | pixels | {100 * saved['test/acc']:.2f} |" in report
    assert (out / "baselines.png").exists()

    # The same split, subsample and preprocessing by hand give the same logistic regression.
    train, keep = dm.split("train"), training_subset(dm.split("train").labels.numpy(), 100, 0)
    preprocess = Preprocess("global", flatten=True)
    preprocess.set_statistics(*dm.statistics)
    inputs = preprocess(train.images[keep]).numpy()
    model = LogisticRegression(max_iter=300).fit(inputs, train.labels[keep].numpy())
    by_hand = model.predict(preprocess(dm.split("test").images).numpy())
    logistic = load_predictions(out / "baselines" / "logistic" / "predictions.npz")
    assert np.array_equal(logistic["predicted"], by_hand)
    saved = json.loads((out / "baselines" / "logistic" / "metrics.json").read_text())
    assert saved["parameters"] == 784 * 10 + 10


def test_hog_baseline(fake_data_dir, tmp_path) -> None:
    feature = pytest.importorskip(
        "skimage.feature", reason="HOG needs scikit-image: pip install -e .[baselines]"
    )
    images = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    options = {"orientations": 9, "pixels_per_cell": [4, 4], "cells_per_block": [2, 2]}
    rows = baselines.hog_features(images, options)
    for row, image in zip(rows, images, strict=True):
        expected = feature.hog(image.reshape(28, 28), **options, feature_vector=True)
        np.testing.assert_allclose(row, expected, rtol=1e-6)
    out = tmp_path / "hog"
    run_baselines(out, fake_data_dir, "task.only=[hog_svm]", "task.samples=60",
                  "task.classifiers.hog_svm.estimator._args_.0.n_components=20")  # fmt: skip
    saved = json.loads((out / "baselines" / "hog_svm" / "metrics.json").read_text())
    predictions = load_predictions(out / "baselines" / "hog_svm" / "predictions.npz")
    assert_matches_sklearn_report(saved, predictions["labels"], predictions["predicted"])
    assert saved["baseline"]["probabilities"] == "one-hot of the predicted class"


def test_stored_numbers_by_hand() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 12)), np.arange(60) % 3
    svc = make_pipeline(PCA(4), SVC()).fit(x, y)
    expected = 4 * 12 + 12 + svc[1].support_vectors_.size + svc[1].dual_coef_.size + 3
    assert baselines.stored_numbers(svc) == expected
    forest = RandomForestClassifier(n_estimators=2, max_depth=1, random_state=0).fit(x, y)
    assert baselines.stored_numbers(forest) == 2 * (2 * 3 + 2 * 3)  # 3 nodes, 2 leaves x 3


def test_training_subset_is_stratified_and_checked(fake_data_dir, tmp_path) -> None:
    labels = np.repeat(np.arange(10), 50)
    index = training_subset(labels, 100, seed=0)
    assert len(index) == 100 and np.bincount(labels[index]).tolist() == [10] * 10
    assert np.array_equal(training_subset(labels, None, 0), np.arange(500))
    with pytest.raises(ConfigError, match="task.samples=5"):
        training_subset(labels, 5, 0)
    with pytest.raises(ConfigError, match="not among the baselines"):
        run_baselines(tmp_path, fake_data_dir, "task.only=[svm]")
