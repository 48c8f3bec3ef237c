"""Batches of in-memory tensors: whole-batch indexing, device-resident batches, samplers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor
from torch.utils.data import Dataset, Sampler

#: Images per evaluation forward pass (validation, test, prediction, the analysis callbacks):
#: larger batches fall out of the CPU cache (docs/benchmark.md); 250 divides 5,000 and 10,000.
EVAL_BATCH_SIZE = 250


class TensorBatchDataset(Dataset):
    """A map-style dataset over in-memory tensors that fetches a whole batch in one indexing.

    ``DataLoader`` calls ``__getitems__`` with the batch's indices, so a batch costs one
    tensor gather instead of ``batch_size`` Python calls plus a ``torch.stack``. It stays a
    real ``Dataset`` so Lightning can still swap in a ``DistributedSampler`` under DDP.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.images[index], self.labels[index]


class DeviceBatches:
    """Batches of a whole split that lives on the accelerator, airbench-style.

    The indices are drawn with ``randperm`` on the data's device and the images gathered
    there: no host work, no host-to-device copy per batch. Lightning accepts any sized
    iterable as a loader. Each ``iter()`` is a new epoch.
    """

    def __init__(self, split: TensorBatchDataset, batch_size: int, shuffle: bool) -> None:
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        images, labels = self.split.images, self.split.labels
        draw = torch.randperm if self.shuffle else torch.arange
        for index in draw(len(labels), device=labels.device).split(self.batch_size):
            yield images[index], labels[index]


class EpochSeededSampler(Sampler[int]):
    """A random permutation per epoch drawn from (seed, epoch) alone.

    Lightning calls ``set_epoch`` at the start of every epoch, so the order of epoch k does
    not depend on how much randomness earlier epochs used: a run resumed at epoch k sees
    exactly the batches of an uninterrupted run (``shuffle=True`` draws from the global RNG).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(hash((self.seed, self.epoch)) & (2**63 - 1))
        return iter(torch.randperm(self.size, generator=generator).tolist())


def batch_is_ready(batch: Any) -> Any:
    """``collate_fn`` for ``TensorBatchDataset``: its ``__getitems__`` already built the batch."""
    return batch


def eval_sampler(dataset: Dataset, trainer: Any | None) -> Sampler | None:
    """Under DDP, every ``world_size``-th image for this process and no image twice.

    Lightning's own ``UnrepeatedDistributedSampler`` (used for prediction): shards may differ
    by one image, which is safe in evaluation because no collective runs per batch (metrics
    sync once, at ``compute()``). Lightning leaves a ``DistributedSampler`` in place.
    None (a plain sequential loader) in a single process.
    """
    if trainer is None or trainer.world_size <= 1:
        return None
    return UnrepeatedDistributedSampler(
        dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
    )
