"""The speed and best-accuracy recipes, device-resident batches, the compile option."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import assert_tested, compose_config

from fmnist.config import build
from fmnist.data import FashionMNISTDataModule
from fmnist.data.batches import DeviceBatches
from fmnist.errors import ConfigError
from fmnist.models.cnn import count_parameters
from fmnist.training.module import ClassificationModule
from fmnist.training.run import train

#: Tiny data and one step, for experiments whose callbacks/logger groups differ from train's.
DEBUG_STEP = [
    "data.search_system=false",
    "data.download=false",
    "data.strict=false",
    "data.val_size=40",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "trainer=debug",
    "logger=none",
    "callbacks=none",
]


def test_speedrun_recipe_composes_and_runs_one_step(tmp_path: Path, fake_data_dir: Path) -> None:
    cfg = compose_config("train", ["experiment=speedrun", *DEBUG_STEP], tmp_path, fake_data_dir)
    metrics = train(cfg)
    assert assert_tested(tmp_path, 64)["test/acc"] == metrics["test/acc"]  # one batch
    assert metrics["parameters"] == count_parameters(build(cfg.model))


def test_best_recipe_is_wrn_28_10_and_runs_one_step(tmp_path: Path, fake_data_dir: Path) -> None:
    cfg = compose_config("train", ["experiment=best", *DEBUG_STEP], tmp_path, fake_data_dir)
    assert count_parameters(build(cfg.model)) == 36_478_906  # WRN-28-10, 1 input channel
    # The same recipe (SGD, cosine, augmentation, TTA) on a narrow net, to stay fast.
    small = ["model.blocks=[1,1,1]", "model.widths=[8,16,32]", "model.stem_width=8"]
    cfg = compose_config(
        "train", ["experiment=best", *DEBUG_STEP, *small], tmp_path / "s", fake_data_dir
    )
    metrics = train(cfg)
    assert assert_tested(tmp_path / "s", 64)["test/acc"] == metrics["test/acc"]  # one batch


def _datamodule(fake_data_dir: Path, on_device: bool | str) -> FashionMNISTDataModule:
    dm = FashionMNISTDataModule(
        root=str(fake_data_dir),
        search_system=False,
        download=False,
        strict=False,
        val_size=40,
        batch_size=32,
        eval_batch_size=48,
        on_device=on_device,
    )
    dm.setup()
    return dm


def test_device_batches_give_the_dataloaders_batches(fake_data_dir: Path) -> None:
    on, off = _datamodule(fake_data_dir, True), _datamodule(fake_data_dir, False)
    assert isinstance(on.test_dataloader(), DeviceBatches)
    assert not isinstance(off.test_dataloader(), DeviceBatches)
    ours, theirs = list(on.test_dataloader()), list(off.test_dataloader())
    assert len(ours) == len(theirs) == len(on.test_dataloader()) == 2  # 80 images, batch 48
    for (x1, y1), (x2, y2) in zip(ours, theirs, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_shuffled_device_batches_cover_the_split_once(fake_data_dir: Path) -> None:
    dm = _datamodule(fake_data_dir, True)
    split = dm.split("train")
    torch.manual_seed(0)
    batches = list(dm.train_dataloader())
    assert [len(y) for _, y in batches] == [32, 32, 32, 32, 32, 32, 32, 32, 4]  # 260 images
    images, labels = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    assert not torch.equal(labels, split.labels)  # shuffled ...
    # ... and a permutation: every image once, each with its own label.
    key = lambda x: x.flatten(1).double() @ torch.arange(784, dtype=torch.double)  # noqa: E731
    ours, theirs = torch.sort(key(images)), torch.sort(key(split.images))
    assert torch.equal(ours.values, theirs.values)
    assert torch.equal(labels[ours.indices], split.labels[theirs.indices])


def test_on_device_auto_stays_on_cpu_without_an_accelerator(fake_data_dir: Path) -> None:
    dm = _datamodule(fake_data_dir, "auto")
    assert dm.split("train").images.device.type == "cpu"
    assert not isinstance(dm.train_dataloader(), DeviceBatches)
    with pytest.raises(ConfigError, match="on_device"):
        FashionMNISTDataModule(on_device="gpu")


def test_compile_keeps_checkpoint_keys() -> None:
    net = {"_target_": "fmnist.models.CNN", "filters": [4], "hidden": 0}
    plain = ClassificationModule(net, channels_last=True)
    compiled = ClassificationModule(net, channels_last=True, compile=True)
    assert compiled.hparams.compile
    assert list(compiled.state_dict()) == list(plain.state_dict())
