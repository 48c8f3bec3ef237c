"""The LightningDataModule: the official splits, a seeded validation split, batches.

The whole dataset (70,000 x 28 x 28 uint8, 55 MB) lives in memory as one tensor. Batches are
taken by indexing that tensor with a whole batch of indices at once (``__getitems__``), and
training augmentation runs batched in ``on_after_batch_transfer`` (on the GPU when there is
one). No per-sample PIL or Python work happens in the training loop.

Batches leave as raw images: uint8 for evaluation, 0-1 floats after augmentation. Turning
them into model inputs is the model's job (``fmnist.models.preprocess``); the data module
only fits the training split's statistics it needs (:attr:`statistics`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from pydantic import NonNegativeInt, PositiveInt
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader

from fmnist.config import Probability, checked
from fmnist.data import augment
from fmnist.data.batches import (
    EVAL_BATCH_SIZE,
    DeviceBatches,
    EpochSeededSampler,
    TensorBatchDataset,
    batch_is_ready,
    eval_sampler,
)
from fmnist.data.classes import NUM_CLASSES
from fmnist.data.files import load_fashion_mnist, locate_data
from fmnist.data.pixels import Normalization, fit_statistics, to_unit_range
from fmnist.errors import ConfigError

log = logging.getLogger(__name__)


class FashionMNISTDataModule(L.LightningDataModule):
    """Fashion-MNIST with a seeded stratified validation split and batched GPU-ready transforms.

    Args (the others are explained in conf/data/fashion_mnist.yaml):
        strict: check split sizes and content MD5 (off only for synthetic test data).
        val_size: images held out of the official train set for validation (int or fraction);
            0 trains on all of them (a final recipe, chosen on validation before).
        normalize, flatten: the model's ``module.normalize`` and ``module.flatten`` follow them.
        one_hot: give targets as one-hot float vectors instead of class indices.
        num_workers: DataLoader workers; 0 is fastest for in-memory data.
    """

    @checked("data")
    def __init__(
        self,
        root: str | Path | None = "data",
        download: bool = True,
        search_system: bool = True,
        strict: bool = True,
        val_size: int | float = 5000,  # its range depends on the files: checked in setup
        split_seed: int = 0,
        batch_size: PositiveInt = 128,
        eval_batch_size: PositiveInt = EVAL_BATCH_SIZE,
        normalize: Normalization = "global",
        flatten: bool = False,
        one_hot: bool = False,
        crop_padding: NonNegativeInt = 0,
        hflip: bool | Literal["alternate"] = False,
        erasing: Probability = 0.0,
        corruption_mix: Probability = 0.0,
        num_workers: NonNegativeInt = 0,
        pin_memory: bool = False,
        on_device: bool | Literal["auto"] = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root, self.download, self.search_system = root, download, search_system
        self.strict, self.val_size, self.split_seed = strict, val_size, split_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.normalize, self.flatten, self.one_hot = normalize, flatten, one_hot
        self.crop_padding, self.hflip, self.erasing = crop_padding, hflip, erasing
        self.corruption_mix, self.on_device = corruption_mix, on_device
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.splits: dict[str, TensorBatchDataset] = {}
        #: The training split's (mean, std) for ``normalize``, fitted in ``setup``.
        self.statistics: tuple[Tensor, Tensor] = (torch.tensor(0.0), torch.tensor(1.0))

    def prepare_data(self) -> None:
        """Find or fetch the files, once per node: Lightning calls this in one process before
        any ``setup``, so DDP processes never race on one download. Outside a Trainer, call
        it before ``setup`` (as :meth:`split` does)."""
        locate_data(self.root, self.download, self.search_system)

    def setup(self, stage: str | None = None) -> None:
        """Read the files :meth:`prepare_data` found or fetched (in every process)."""
        if self.splits:
            return
        raw = load_fashion_mnist(self.root, False, self.strict, self.search_system)
        n_train = len(raw.train_labels)
        n_val = (
            round(self.val_size * n_train) if isinstance(self.val_size, float) else self.val_size
        )
        if not 0 <= n_val < n_train:
            raise ConfigError(
                f"data.val_size={self.val_size} leaves no images for training: the train set "
                f"has {n_train} images; give a number between 0 (train on all, no validation) "
                f"and {n_train - 1} (or a fraction in [0, 1))."
            )
        train_idx, val_idx = torch.arange(n_train), torch.arange(0)
        if n_val:
            train_idx, val_idx = map(torch.from_numpy, train_test_split(
                train_idx.numpy(), test_size=n_val, stratify=raw.train_labels.numpy(),
                random_state=self.split_seed,
            ))  # fmt: skip
        train_images = raw.train_images[train_idx]
        self.splits = {
            "train": TensorBatchDataset(train_images, raw.train_labels[train_idx]),
            "val": TensorBatchDataset(raw.train_images[val_idx], raw.train_labels[val_idx]),
            "test": TensorBatchDataset(raw.test_images, raw.test_labels),
        }
        self.statistics = fit_statistics(train_images, self.normalize)
        self._move_to_device()
        log.info(
            "Fashion-MNIST: %d train / %d val / %d test images",
            *(len(self.splits[s]) for s in ("train", "val", "test")),
        )

    def _device(self) -> torch.device:
        """Where the data lives: the trainer's device if ``on_device`` says so, else CPU."""
        root = self.trainer.strategy.root_device if self.trainer is not None else None
        if self.on_device is False or root is None:
            return torch.device("cpu")
        if self.on_device == "auto" and (root.type == "cpu" or self.trainer.world_size > 1):
            return torch.device("cpu")
        return root

    def _move_to_device(self) -> None:
        device = self._device()
        if device.type == "cpu":
            return
        log.info("Fashion-MNIST: whole dataset moved to %s", device)
        for name, split in self.splits.items():
            self.splits[name] = TensorBatchDataset(split.images.to(device), split.labels.to(device))

    def split(self, name: str) -> TensorBatchDataset:
        """The raw (uint8) images and labels of ``train``, ``val`` or ``test``."""
        if not self.splits:
            self.prepare_data()
            self.setup()
        if name not in self.splits:
            raise ConfigError(f"Unknown split {name!r}: use 'train', 'val' or 'test'.")
        if not len(self.splits[name]):
            raise ConfigError(
                f"No {name} split: this run trained on every training image (data.val_size=0). "
                "Use the test split, or a run with a validation split."
            )
        return self.splits[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader | DeviceBatches:
        batch_size = self.batch_size if shuffle else self.eval_batch_size
        split = self.split(name)
        # Under DDP the DataLoader stays, so Lightning can give each process its shard.
        single = self.trainer is None or self.trainer.world_size == 1
        if single and (self.on_device is True or split.labels.device.type != "cpu"):
            return DeviceBatches(split, batch_size, shuffle)
        if shuffle:
            # Seeded by seed_everything's seed (torch.initial_seed), so a run's order is its
            # own and a resumed run sees the same batches as an uninterrupted one.
            sampler = EpochSeededSampler(len(split), torch.initial_seed())
        else:
            # Under DDP: each val/test image on exactly one process
            # (see fmnist.training.distributed).
            sampler = eval_sampler(split, self.trainer)
        return DataLoader(
            split,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=batch_is_ready,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("test", shuffle=False)

    # ----- batched augmentation ----------------------------------------------------------

    def augment(self, images: Tensor, epoch: int = 0) -> Tensor:
        """Batched training augmentation of raw images -> 0-1 floats (N, 1, 28, 28)."""
        if self.hflip == "alternate":  # before scaling: it reads the raw pixels' parity
            images = augment.alternating_hflip(images, epoch)
        images = to_unit_range(images)
        if self.crop_padding:
            images = augment.random_crop(images, self.crop_padding)
        if self.hflip is True:
            images = augment.random_hflip(images)
        if self.corruption_mix:
            images = augment.corruption_mix(images, self.corruption_mix)
        if self.erasing:
            images = augment.random_erasing(images, self.erasing)
        return images

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, Tensor):  # the model summary's example input, images alone
            return batch
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images, self.trainer.current_epoch)
        if self.one_hot:
            labels = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
        return images, labels
