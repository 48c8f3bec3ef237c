"""The data module: reading and checking IDX files, finding data, splits and transforms."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
import torch
from conftest import idx_header

from bench.synthetic import write_idx, write_synthetic_dataset
from fmnist.data import (
    FILES,
    FashionMNISTDataModule,
    load_fashion_mnist,
    locate_data,
    read_idx,
)
from fmnist.errors import ConfigError, CorruptDatasetError, DatasetNotFoundError
from fmnist.models.preprocess import Preprocess


def datamodule(root: Path, **kwargs) -> FashionMNISTDataModule:
    options = dict(root=str(root), download=False, search_system=False, strict=False, val_size=40)
    options.update(kwargs)
    dm = FashionMNISTDataModule(**options)
    dm.setup()
    return dm


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    images = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([0, 9, 3, 3, 1, 5, 2], dtype=torch.uint8)
    assert torch.equal(read_idx(write_idx(tmp_path / f"x{suffix}", images)), images)
    assert torch.equal(read_idx(write_idx(tmp_path / f"y{suffix}", labels)), labels)


def test_wrong_magic_number_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write((1234).to_bytes(4, "big") + bytes(100))
    with pytest.raises(CorruptDatasetError, match="magic number 1234"):
        read_idx(path)


def test_truncated_file_is_reported(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", torch.zeros(5, 28, 28, dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDatasetError, match="truncated"):
        read_idx(path)


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x.gz", torch.randint(0, 255, (50, 28, 28), dtype=torch.uint8))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CorruptDatasetError, match="get it again"):
        read_idx(path)


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ((0, 28, 28), r"claims shape \(0, 28, 28\): no images"),
        ((2**31, 2**31, 4), "more than the limit"),  # 2**64 bytes: wraps to 0 in int64
        ((2**32 - 1,) * 3, "more than the limit"),
    ],
)
def test_idx_header_claiming_no_images_or_too_many_is_reported(
    tmp_path: Path, shape: tuple[int, ...], words: str
) -> None:
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_header(shape))
    with pytest.raises(CorruptDatasetError, match=words) as error:
        read_idx(path)
    assert str(path) in str(error.value) and "get it again" in str(error.value)


def test_idx_limit_is_checked_on_the_header_before_reading(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x.gz", torch.zeros(10, 28, 28, dtype=torch.uint8))
    assert read_idx(path, max_bytes=7840).shape == (10, 28, 28)
    with pytest.raises(CorruptDatasetError, match="7840 bytes, more than the limit of 7839"):
        read_idx(path, max_bytes=7839)


def test_idx_longer_than_its_header_claims_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:  # claims 2 images, holds 3
        f.write(idx_header((2, 28, 28)) + bytes(3 * 784))
    with pytest.raises(CorruptDatasetError, match="more than the 1568 bytes its header"):
        read_idx(path)


def test_missing_dataset_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        load_fashion_mnist(tmp_path / "nowhere", download=False, search_system=False)
    message = str(error.value)
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "data.root" in message and "data.download=true" in message
    assert str(tmp_path / "nowhere") in message


def test_incomplete_data_root_warns_naming_the_missing_files(tmp_path, monkeypatch, caplog) -> None:
    root = write_synthetic_dataset(tmp_path / "root")
    for stem in FILES["test"]:
        (root / f"{stem}.gz").unlink()
    system = write_synthetic_dataset(tmp_path / "system")
    monkeypatch.setattr("fmnist.data.files.SYSTEM_DATA_DIR", system)
    with caplog.at_level(logging.INFO, logger="fmnist.data.files"):
        files = locate_data(root, download=False)
    assert set(files.values()) == {
        system / f"{stem}.gz" for pair in FILES.values() for stem in pair
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"data.root={root}" in warnings[0]
    assert "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in warnings[0]
    assert any(str(system) in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_labels_out_of_range_are_rejected(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path)
    write_idx(tmp_path / f"{FILES['test'][1]}.gz", torch.full((80,), 12, dtype=torch.uint8))
    with pytest.raises(CorruptDatasetError, match="outside 0-9"):
        load_fashion_mnist(tmp_path, search_system=False, strict=False)


def test_strict_mode_checks_sizes_and_content_md5(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path)
    with pytest.raises(CorruptDatasetError, match="official train split has 60000"):
        load_fashion_mnist(tmp_path, search_system=False, strict=True)
    # Right sizes, wrong content: only the MD5 check can tell.
    for split, n in (("train", 60_000), ("test", 10_000)):
        write_idx(tmp_path / f"{FILES[split][0]}.gz", torch.zeros(n, 28, 28, dtype=torch.uint8))
        write_idx(tmp_path / f"{FILES[split][1]}.gz", torch.zeros(n, dtype=torch.uint8))
    with pytest.raises(CorruptDatasetError, match="MD5"):
        load_fashion_mnist(tmp_path, search_system=False, strict=True)


def test_torchvision_layout_is_found(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path / "FashionMNIST" / "raw")
    raw = load_fashion_mnist(tmp_path, search_system=False, strict=False)
    assert raw.train_images.shape == (300, 28, 28) and raw.test_labels.shape == (80,)


def test_split_sizes_stratification_and_determinism(fake_data_dir: Path) -> None:
    dm = datamodule(fake_data_dir, val_size=50, split_seed=3)
    train, val, test = (dm.split(s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (250, 50, 80)
    assert torch.bincount(val.labels, minlength=10).tolist() == [5] * 10
    assert torch.bincount(train.labels, minlength=10).tolist() == [25] * 10
    again = datamodule(fake_data_dir, val_size=50, split_seed=3)
    assert torch.equal(again.split("val").images, val.images)
    other = datamodule(fake_data_dir, val_size=50, split_seed=4)
    assert not torch.equal(other.split("val").images, val.images)


def test_val_size_zero_trains_on_every_image(fake_data_dir: Path) -> None:
    full = datamodule(fake_data_dir, val_size=0)
    raw = load_fashion_mnist(fake_data_dir, search_system=False, strict=False)
    assert torch.equal(full.split("train").images, raw.train_images)
    assert len(full.split("test")) == 80
    with pytest.raises(ConfigError, match=r"No val split: .*data.val_size=0"):
        full.split("val")  # what needs validation images says why there are none
    mean = raw.train_images.float().div(255).mean()
    assert torch.allclose(full.statistics[0], mean)  # normalized with all of them


def test_val_size_fraction_and_errors(fake_data_dir: Path) -> None:
    assert len(datamodule(fake_data_dir, val_size=0.1).split("val")) == 30
    with pytest.raises(ConfigError, match="val_size=500"):
        datamodule(fake_data_dir, val_size=500)
    with pytest.raises(ConfigError, match="batch_size=0"):
        FashionMNISTDataModule(batch_size=0)
    with pytest.raises(ConfigError, match="normalize"):
        FashionMNISTDataModule(normalize="zscore")


def test_standardization_uses_train_split_statistics(fake_data_dir: Path) -> None:
    dm = datamodule(fake_data_dir)
    train_pixels = dm.split("train").images.double() / 255
    mean, std = dm.statistics
    assert mean.item() == pytest.approx(train_pixels.mean().item(), rel=1e-5)
    preprocess = Preprocess("global")
    preprocess.set_statistics(mean, std)
    x = preprocess(dm.split("train").images)
    assert x.shape == (260, 1, 28, 28) and x.dtype == torch.float32
    assert x.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert x.std().item() == pytest.approx(1.0, abs=1e-3)
    # uint8 and 0-1 floats are the same images
    torch.testing.assert_close(preprocess(dm.split("train").images.float() / 255), x)
    per_pixel = datamodule(fake_data_dir, normalize="per_pixel").statistics
    assert per_pixel[0].shape == (28, 28) and per_pixel[1].min() >= 1e-2
    unscaled = Preprocess("none")(dm.split("test").images)
    assert unscaled.min() >= 0.0 and unscaled.max() <= 1.0


def test_batches_stay_raw_and_one_hot_targets(fake_data_dir: Path) -> None:
    """Evaluation batches stay uint8 (the model preprocesses); flatten is the model's job."""
    dm = datamodule(fake_data_dir, flatten=True, one_hot=True, batch_size=16)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (16, 28, 28)
    x, y = dm.on_after_batch_transfer((images, labels), 0)
    assert torch.equal(x, images)  # no trainer: not training, so no augmentation either
    assert y.shape == (16, 10) and torch.equal(y.argmax(1), labels) and torch.all(y.sum(1) == 1)
    assert Preprocess("global", flatten=True)(images).shape == (16, 784)


def test_loader_batches_cover_the_split_once(fake_data_dir: Path) -> None:
    dm = datamodule(fake_data_dir, eval_batch_size=30)
    batches = list(dm.test_dataloader())
    assert [len(b[1]) for b in batches] == [30, 30, 20]
    assert torch.equal(torch.cat([b[1] for b in batches]), dm.split("test").labels)


@pytest.mark.real_data
def test_real_dataset_sizes_and_balance(real_data_root: Path) -> None:
    raw = load_fashion_mnist(root=real_data_root, download=False, strict=True)
    assert raw.train_images.shape == (60_000, 28, 28) and raw.test_images.shape == (10_000, 28, 28)
    assert torch.bincount(raw.train_labels).tolist() == [6000] * 10
    assert torch.bincount(raw.test_labels).tolist() == [1000] * 10


@pytest.mark.real_data
def test_real_datamodule_default_split(real_data_root: Path) -> None:
    dm = FashionMNISTDataModule(root=real_data_root, download=False)
    dm.setup()
    assert [len(dm.split(s)) for s in ("train", "val", "test")] == [55_000, 5_000, 10_000]
    assert torch.bincount(dm.split("val").labels).tolist() == [500] * 10
    mean, std = dm.statistics
    assert 0.28 < mean.item() < 0.29 and 0.35 < std.item() < 0.36
