"""Shared fixtures: tiny synthetic Fashion-MNIST files and composed Hydra configs; the tests
marked real_data are skipped, saying why, when the real dataset is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from bench.synthetic import SYNTHETIC_DATA_OVERRIDES, write_synthetic_dataset
from fmnist.config import CONF_DIR
from fmnist.data.fetch import data_settings, find_dataset
from fmnist.data.files import SYSTEM_DATA_DIR


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """Where ``make data`` puts the real dataset: a default run's ``data.root`` (the tests also
    search Debian's folder)."""
    return Path(data_settings().root)


@pytest.hookimpl(trylast=True)  # after -m has deselected what it deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the real_data tests when the dataset is nowhere a default run looks."""
    needing = [item for item in items if item.get_closest_marker("real_data")]
    root = data_settings().root if needing else None
    if needing and find_dataset(root) is None:
        where = f"Fashion-MNIST is in neither {root} nor {SYSTEM_DATA_DIR}"
        why = f"{where}: `make data` gets it or says how"
        for item in needing:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("fake_fmnist"))


def idx_header(shape: tuple[int, ...]) -> bytes:
    """A uint8 IDX header claiming ``shape``: magic, then one big-endian size per axis."""
    magic = (0x0800 | len(shape)).to_bytes(4, "big")
    return magic + b"".join(n.to_bytes(4, "big") for n in shape)


#: Overrides that point a run at the tiny data and keep it to a few seconds.
TINY_OVERRIDES = [
    *SYNTHETIC_DATA_OVERRIDES,
    "trainer=cpu",
    "trainer.precision=32-true",  # the same numbers on every CPU (bf16 follows its flags)
    "trainer.max_epochs=2",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
]


def compose_config(
    config_name: str, overrides: list[str], output_dir: Path, data_dir: Path | None = None
) -> DictConfig:
    """Compose a config like the command line would, with outputs under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        if data_dir is not None:
            cfg.data.root = str(data_dir)
    return cfg


def assert_tested(run_dir: Path, images: int) -> dict:
    """The run's metrics.json holds the accuracy and confusion matrix of its own
    predictions.npz, which holds ``images`` test images; returns the metrics."""
    import json

    import numpy as np

    metrics = json.loads((run_dir / "metrics.json").read_text())
    with np.load(run_dir / "predictions.npz") as predictions:
        labels, predicted = predictions["labels"], predictions["predicted"]
    assert (
        len(labels) == images
        and metrics["confusion_matrix"]
        == np.histogram2d(labels, predicted, bins=10, range=[[0, 10], [0, 10]])[0]
        .astype(int)
        .tolist()
    )
    assert metrics["test/acc"] == pytest.approx(float(np.mean(labels == predicted)), abs=1e-7)
    return metrics


@pytest.fixture
def tiny_train_cfg(tmp_path: Path, fake_data_dir: Path):
    """A function giving a tiny training config; extra overrides come last and win."""

    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config(
            "train", TINY_OVERRIDES + list(overrides), output_dir or tmp_path / "run", fake_data_dir
        )

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, fake_data_dir: Path) -> Path:
    """A small CNN trained in seconds on the synthetic squares (class = square position),
    shared by the prediction, OOD and serving tests."""
    from fmnist.training.run import train

    out = tmp_path_factory.mktemp("tiny_checkpoint")
    overrides = [
        "model.filters=[16,32]",
        "trainer.max_epochs=4",
        "data.crop_padding=0",
        "data.hflip=false",
        "module.tta_flip=false",
        "module.tta_shift=0",
        "logger=none",
        "callbacks.lr_monitor=null",
        "callbacks.activation_capture=null",
        "callbacks.permutation_importance=null",
        "callbacks.learning_curves=null",
        "test=false",
    ]
    cfg = compose_config("train", TINY_OVERRIDES + overrides, out, fake_data_dir)
    path = Path(train(cfg)["best_checkpoint"])
    GlobalHydra.instance().clear()
    return path


@pytest.fixture
def small_disk(tmp_path: Path):
    """A function mounting a tmpfs of ``size`` in ``tmp_path``: a disk that fills up (the
    test is skipped where mounting is not allowed, e.g. without root)."""
    mounted: list[Path] = []

    def mount(size: str = "1M") -> Path:
        mount_point = tmp_path / f"disk{len(mounted)}"
        mount_point.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(mount_point)
        return mount_point

    yield mount
    for mount_point in mounted:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
