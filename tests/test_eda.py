"""EDA functions against direct NumPy computations, and the eda task's files and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from bench.synthetic import write_idx, write_synthetic_dataset
from fmnist.analysis import eda
from fmnist.data import FILES, load_fashion_mnist, read_idx
from fmnist.tasks import run_analysis
from tests.conftest import compose_config

DATA_OVERRIDES = ["data.search_system=false", "data.download=false", "data.strict=false"]
EDA_FIGURES = (
    "class_balance",
    "intensity_histogram",
    "random_pixels",
    "class_means",
    "class_stds",
    "correlation_matrix",
    "correlation_by_lag",
    "sample_grid",
)


@pytest.fixture(scope="module")
def splits(fake_data_dir: Path) -> dict[str, np.ndarray]:
    raw = load_fashion_mnist(fake_data_dir, download=False, strict=False, search_system=False)
    return {
        "train_images": raw.train_images.numpy(),
        "train_labels": raw.train_labels.numpy(),
        "test_images": raw.test_images.numpy(),
        "test_labels": raw.test_labels.numpy(),
    }


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny arrays gain nothing from threads, and on a shared, loaded machine idle BLAS and
    OpenMP threads spinning for their turn make small fits many times slower."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


def run_task(task: str, output_dir: Path, data_dir: Path, *overrides: str) -> Path:
    cfg = compose_config(
        "analyze", [*DATA_OVERRIDES, f"task={task}", *overrides], output_dir, data_dir
    )
    GlobalHydra.instance().clear()
    return run_analysis(cfg)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert min(image.size) > 100, (path, image.size)


def event_image_tags(tensorboard_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tensorboard_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return set(accumulator.Tags()["images"])


def test_counts_ranges_and_nan(splits) -> None:
    labels = splits["train_labels"]
    _, expected = np.unique(labels, return_counts=True)
    np.testing.assert_array_equal(eda.class_counts(labels, 10), expected)
    np.testing.assert_array_equal(eda.class_counts(np.array([0, 0, 2, 11, -1]), 3), [2, 0, 1])
    assert eda.value_range(splits["train_images"]) == (
        int(splits["train_images"].min()),
        int(splits["train_images"].max()),
    )
    assert eda.nan_count(splits["train_images"]) == 0
    assert eda.nan_count(np.array([1.0, np.nan, 2.0, np.nan])) == 2


def test_histogram_and_zero_share(splits) -> None:
    images = splits["train_images"].copy()
    images[:3, :10] = 0  # make sure there are zeros to count
    histogram = eda.intensity_histogram(images)
    assert histogram.shape == (256,) and histogram.sum() == images.size
    assert histogram[230] == np.count_nonzero(images == 230)
    assert eda.zero_share(images) == pytest.approx(np.mean(images == 0))
    assert eda.zero_share(images) == pytest.approx(histogram[0] / images.size)


def test_random_pixels_and_their_values(splits) -> None:
    images, labels = splits["train_images"], splits["train_labels"]
    pixels = eda.random_pixels((28, 28), 5, seed=3)
    assert pixels.shape == (5, 2) and len({tuple(p) for p in pixels.tolist()}) == 5
    assert pixels.min() >= 0 and pixels.max() < 28
    np.testing.assert_array_equal(pixels, eda.random_pixels((28, 28), 5, seed=3))
    values = eda.pixel_values_by_class(images, labels, pixels, 10)
    row, col = pixels[2]
    np.testing.assert_array_equal(values[2][7], images[labels == 7, row, col])
    assert sum(len(v) for v in values[0]) == len(images)


def test_class_mean_and_std_images(splits) -> None:
    images, labels = splits["train_images"], splits["train_labels"]
    means, stds = eda.class_mean_std(images, labels, 10)
    assert means.shape == stds.shape == (10, 28, 28)
    for c in (0, 4, 9):
        members = images[labels == c].astype(np.float64)
        np.testing.assert_allclose(means[c], members.mean(axis=0), atol=1e-8)
        np.testing.assert_allclose(stds[c], members.std(axis=0), atol=1e-6)


def test_pixel_correlation_matches_numpy(splits) -> None:
    images = splits["train_images"]
    corr = eda.pixel_correlation(images)
    flat = images.reshape(len(images), -1).astype(np.float64)
    for a, b in ((0, 1), (100, 128), (300, 701)):
        expected = np.corrcoef(flat[:, a], flat[:, b])[0, 1]
        assert corr[a, b] == pytest.approx(expected, abs=1e-4)
    assert corr.shape == (784, 784)
    np.testing.assert_allclose(corr, corr.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(corr), 1.0)
    constant = images.copy()
    constant[:, 0, 0] = 7  # a pixel that never changes: no correlation to report, not NaN
    corr = eda.pixel_correlation(constant)
    assert np.isfinite(corr).all() and corr[0, 1] == 0 and corr[0, 0] == 1


def test_correlation_by_lag_and_structure() -> None:
    # Each row is the row above plus noise (a random walk down every column, independent
    # columns): lag 28 (one row down) correlates most, lag 56 less, neighbours in a row not.
    rng = np.random.default_rng(0)
    start = rng.integers(0, 100, size=(2000, 1, 28))
    steps = rng.integers(0, 6, size=(2000, 27, 28))
    images = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1).astype(np.uint8)
    corr = eda.pixel_correlation(images)
    by_lag = eda.mean_abs_corr_by_lag(corr, 60)
    assert by_lag[0] == pytest.approx(1.0)
    assert by_lag[1] == pytest.approx(np.abs(np.diagonal(corr, 1)).mean())
    assert by_lag[28] > by_lag[56] > 0.5 > 0.1 > by_lag[1]
    structure = eda.correlation_structure(corr, 28)
    assert structure["lag_w"] == pytest.approx(by_lag[28])
    assert structure["lag_w"] > 5 * structure["lag_half_w"]
    assert structure["share_strongest_partner_is_neighbour"] == pytest.approx(1.0)
    off_diagonal = np.abs(corr[~np.eye(784, dtype=bool)]).mean()
    assert structure["mean_abs_offdiag"] == pytest.approx(off_diagonal)


def test_sample_grid_holds_the_right_classes(splits) -> None:
    images, labels = splits["train_images"], splits["train_labels"]
    grid = eda.sample_grid(images, labels, per_class=4, num_classes=10, seed=0)
    assert grid.shape == (10, 4, 28, 28)
    for c in (0, 5):
        members = images[labels == c].reshape(-1, 784)
        for example in grid[c]:
            assert (members == example.reshape(784)).all(axis=1).any()


def test_find_duplicates_on_arrays() -> None:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    train[17] = train[42] = train[5]
    test[3] = train[10]
    test[7] = test[6]
    found = eda.find_duplicates(train, test)
    assert [g.tolist() for g in found.groups_a] == [[5, 17, 42]]
    assert [g.tolist() for g in found.groups_b] == [[6, 7]]
    assert found.cross.tolist() == [[3, 10]]
    assert found.extra_copies(found.groups_a) == 2
    clean = eda.find_duplicates(train[:5], test[8:])
    assert clean.groups_a == [] and clean.groups_b == [] and len(clean.cross) == 0


def test_eda_task_writes_figures_report_and_tensorboard(tmp_path: Path) -> None:
    # A tiny dataset with planted exact duplicates: train 0 = 1 = 2, test 4 = train 9.
    data_dir = write_synthetic_dataset(tmp_path / "data", n_train_per_class=6, n_test_per_class=2)
    train_file, test_file = (data_dir / f"{FILES[split][0]}.gz" for split in ("train", "test"))
    train, test = read_idx(train_file).clone(), read_idx(test_file).clone()
    train[1] = train[2] = train[0]
    test[4] = train[9]
    write_idx(train_file, train)
    write_idx(test_file, test)

    output_dir = tmp_path / "run"
    report = run_task("eda", output_dir, data_dir, "task.samples_per_class=3").read_text()
    assert "1 sets of copies within train (2 redundant images)" in report
    assert "0 within test" in report and "1 test images that also occur in train" in report
    assert "| train | 0, 1, 2 |" in report and "| test / train | 4 / 9 |" in report
    assert "| train | 60 | uint8 28x28 | 0 | 0-9 |" in report
    assert "*3 random examples per class (seed 0)*" in report  # the default is 10
    for name in EDA_FIGURES:
        assert_png(output_dir / f"{name}.png")
        assert f"]({name}.png)" in report
    assert event_image_tags(output_dir / "tensorboard") == {f"eda/{n}" for n in EDA_FIGURES}
