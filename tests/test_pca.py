"""PCA functions against scikit-learn and NumPy, and the pca/tsne tasks' files and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.errors import MissingConfigException
from sklearn.decomposition import PCA

from fmnist.analysis import pca
from fmnist.data import CLASS_NAMES, load_fashion_mnist
from fmnist.errors import ConfigError
from tests.test_eda import (  # noqa: F401
    EDA_FIGURES,
    assert_png,
    event_image_tags,
    run_task,
    single_thread,
)

PCA_FIGURES = ("pca_explained_variance", "pca_projection", "pca_components")


@pytest.fixture(scope="module")
def raw(fake_data_dir: Path):
    return load_fashion_mnist(fake_data_dir, download=False, strict=False, search_system=False)


def test_preprocess_matches_numpy(raw) -> None:
    train, test = raw.train_images.numpy(), raw.test_images.numpy()
    scaled = pca.preprocess(test, "none", train)
    np.testing.assert_allclose(scaled, test.reshape(len(test), -1) / 255.0, atol=1e-6)
    standardized = pca.preprocess(test, "per_pixel", train)
    train01 = train.reshape(len(train), -1) / 255.0
    expected = (test.reshape(len(test), -1) / 255.0 - train01.mean(0)) / np.maximum(
        train01.std(0, ddof=1), 1e-2
    )
    np.testing.assert_allclose(standardized, expected, atol=1e-4)
    with pytest.raises(ConfigError, match="per_pixel"):
        pca.preprocess(test, "global", train)


@pytest.mark.parametrize("normalize", ["none", "per_pixel"])
def test_fit_pca_matches_sklearn_full_svd(raw, normalize: str) -> None:
    x = pca.preprocess(raw.train_images.numpy(), normalize, raw.train_images.numpy())
    ours = pca.fit_pca(x.astype(np.float64))
    reference = PCA(svd_solver="full").fit(x.astype(np.float64))
    ratio = ours.explained_variance_ratio_
    assert ratio.sum() <= 1 + 1e-9 and (ratio >= -1e-12).all()
    np.testing.assert_allclose(ratio[:20], reference.explained_variance_ratio_[:20], atol=1e-8)
    # Components agree up to sign.
    dots = np.abs((ours.components_[:5] * reference.components_[:5]).sum(axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-6)


def test_variance_summary_against_cumsum() -> None:
    ratios = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.02, 0.02, 0.01, 0.01])
    summary = pca.variance_summary(ratios)
    assert summary.pc1 == pytest.approx(0.3)
    assert summary.first_10 == pytest.approx(ratios[:10].sum())
    cumulative = np.cumsum(ratios)
    assert summary.components_90 == np.argmax(cumulative >= 0.90) + 1 == 7
    assert summary.components_95 == np.argmax(cumulative >= 0.95) + 1 == 8


def test_pca_task_report_figures_tensorboard_projector(tmp_path: Path, fake_data_dir: Path, raw):
    output_dir = tmp_path / "run"
    overrides = [
        "task.scatter_points=100",
        "task.projector_points=50",
        "task.projector_components=8",
    ]
    report = run_task("pca", output_dir, fake_data_dir, *overrides).read_text()
    for name in PCA_FIGURES:
        assert_png(output_dir / f"{name}.png")
        assert f"]({name}.png)" in report
    tensorboard = output_dir / "tensorboard"
    assert event_image_tags(tensorboard) == {
        "pca/explained_variance",
        "pca/projection",
        "pca/components",
    }
    # The quoted shares are scikit-learn's on all images, 0-1 scaled.
    images = np.concatenate([raw.train_images.numpy(), raw.test_images.numpy()])
    ratio = PCA().fit(images.reshape(len(images), -1) / 255.0).explained_variance_ratio_
    assert f"| 0-1 scaled | {100 * ratio[0]:.1f}% | {100 * ratio[:10].sum():.1f}% |" in report
    assert "100 of 380 images drawn with seed 0" in report
    # The embedding projector: config, 50 x 8 features, class-name metadata and a sprite.
    assert "pca8_none" in (tensorboard / "projector_config.pbtxt").read_text()
    (projector,) = tensorboard.glob("*/pca8_none")
    rows = (projector / "tensors.tsv").read_text().strip().splitlines()
    assert len(rows) == 50 and all(len(row.split("\t")) == 8 for row in rows)
    names = (projector / "metadata.tsv").read_text().split("\n")
    assert set(filter(None, names)) <= set(CLASS_NAMES) and len(list(filter(None, names))) == 50
    assert_png(projector / "sprite.png")


def test_tsne_task_writes_its_map(tmp_path: Path, fake_data_dir: Path) -> None:
    output_dir = tmp_path / "run"
    report = run_task(
        "tsne", output_dir, fake_data_dir, "task.n_samples=80", "task.max_iter=250"
    ).read_text()
    assert_png(output_dir / "tsne.png")
    assert "](tsne.png)" in report and "80 images drawn with seed 0" in report
    assert event_image_tags(output_dir / "tensorboard") == {"tsne/map"}


def test_unknown_task_is_hydras_error_listing_the_tasks(tmp_path: Path, fake_data_dir) -> None:
    with pytest.raises(MissingConfigException) as error:
        run_task("edaa", tmp_path / "run", fake_data_dir)
    message = str(error.value)
    assert "Could not find 'task/edaa'" in message
    listed = message.split("Available options in 'task':")[1].split()
    assert {"data", "eda", "pca", "tsne", "model"} <= set(listed)


def test_data_task_writes_eda_and_pca_into_one_report(tmp_path: Path, fake_data_dir: Path):
    output_dir = tmp_path / "run"
    overrides = [
        "task.eda.samples_per_class=2",
        "task.pca.scatter_points=60",
        "task.pca.projector_points=30",
        "task.pca.projector_components=4",
    ]
    report = run_task("data", output_dir, fake_data_dir, *overrides).read_text()
    assert sorted(p.name for p in output_dir.glob("*.md")) == ["report.md"]
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Data quality",
        "## Class balance",
        "## Pixel intensities",
        "## Class mean and standard-deviation images",
        "## Pixel correlations",
        "## Examples",
        "## Principal component analysis",
    ]
    assert report.index("EDA computed in") < report.index("PCA computed in")
    for name in (*EDA_FIGURES, *PCA_FIGURES):
        assert_png(output_dir / f"{name}.png")
        assert report.count(f"]({name}.png)") == 1, name
    tensorboard = output_dir / "tensorboard"
    assert event_image_tags(tensorboard) == {
        *(f"eda/{n}" for n in EDA_FIGURES),
        "pca/explained_variance",
        "pca/projection",
        "pca/components",
    }
    # Each task's own options, overridden as task.<name>.<option>, reach that task.
    assert "*2 random examples per class (seed 0)*" in report
    assert "60 of 380 images drawn with seed 0" in report
    (projector,) = tensorboard.glob("*/pca4_none")
    rows = (projector / "tensors.tsv").read_text().strip().splitlines()
    assert len(rows) == 30 and all(len(row.split("\t")) == 4 for row in rows)
