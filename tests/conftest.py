"""Shared fixtures: tiny synthetic Fashion-MNIST files and composed Hydra configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from fmnist.data import FILES, write_idx

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def make_images(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Learnable synthetic images: a bright 6x6 square whose position encodes the class,
    on low noise. A small CNN separates them in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 40, (len(labels), 28, 28), generator=generator, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        row, col = 2 + 5 * (label // 5), 2 + 5 * (label % 5)
        images[i, row : row + 6, col : col + 6] = 230
    return images


def write_fake_dataset(
    folder: Path, n_train_per_class: int = 30, n_test_per_class: int = 8
) -> Path:
    """Write the four IDX .gz files with balanced classes, shuffled, into ``folder``."""
    for split, per_class, seed in (("train", n_train_per_class, 0), ("test", n_test_per_class, 1)):
        labels = torch.arange(10).repeat_interleave(per_class)
        labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
        image_stem, label_stem = FILES[split]
        write_idx(folder / f"{image_stem}.gz", make_images(labels, seed))
        write_idx(folder / f"{label_stem}.gz", labels.to(torch.uint8))
    return folder


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_dataset(tmp_path_factory.mktemp("fake_fmnist"))


#: Overrides that point a run at the tiny data and keep it to a few seconds.
TINY_OVERRIDES = [
    "data.search_system=false",
    "data.download=false",
    "data.strict=false",
    "data.val_size=40",
    "data.batch_size=32",
    "data.eval_batch_size=64",
    "trainer=cpu",
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
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        if data_dir is not None:
            cfg.data.root = str(data_dir)
    return cfg


@pytest.fixture
def tiny_train_cfg(tmp_path: Path, fake_data_dir: Path):
    """A function giving a tiny training config; extra overrides come last and win."""

    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config(
            "train", TINY_OVERRIDES + list(overrides), output_dir or tmp_path / "run", fake_data_dir
        )

    yield make
    GlobalHydra.instance().clear()
