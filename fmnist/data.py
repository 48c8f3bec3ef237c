"""Fashion-MNIST: finding, reading and validating the IDX files, and the LightningDataModule.

The whole dataset (70,000 x 28 x 28 uint8, 55 MB) lives in memory as one tensor. Batches are
taken by indexing that tensor with a whole batch of indices at once (``__getitems__``), and
scaling, standardization and augmentation run batched in ``on_after_batch_transfer`` (on the
GPU when there is one). No per-sample PIL or Python work happens in the training loop.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from fmnist import augment
from fmnist.distributed import eval_sampler
from fmnist.errors import ConfigError, CorruptDatasetError, DatasetNotFoundError

log = logging.getLogger(__name__)

#: The ten classes, in label order. The one place class names are defined.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28

#: Where Debian's package ``dataset-fashion-mnist`` installs the original files.
SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

#: File stems of the four IDX files, per split.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}

#: MD5 of the *decompressed* IDX bytes. torchvision checks the MD5 of the .gz files it
#: downloads, but Debian recompresses them, so we check the content, which is the same
#: whatever the compression.
CONTENT_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

HOW_TO_GET_DATA = (
    "Get the data in one of these ways: (1) on Debian/Ubuntu, as root: "
    "`apt-get update && apt-get install -y dataset-fashion-mnist` (installs the files in "
    f"{SYSTEM_DATA_DIR}); (2) put the four files train-images-idx3-ubyte.gz, "
    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
    "(from https://github.com/zalandoresearch/fashion-mnist) in a folder and pass "
    "`data.root=THAT_FOLDER`; (3) when online, set `data.download=true` and torchvision "
    "downloads them into data.root."
)

_IDX_MAGIC = {3: 2051, 1: 2049}  # number of dimensions -> magic number of a uint8 IDX file


def read_idx(path: str | Path) -> Tensor:
    """Read a uint8 IDX file (``.gz`` or uncompressed) into a tensor, validating its header.

    Hand-written rather than torchvision's ``read_sn3_pascalvincent_tensor`` because that one
    reads no ``.gz`` and fails on a bad file with a bare ``assert``; here every problem
    becomes a ``CorruptDatasetError`` that names the file and the fix.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise CorruptDatasetError(
            f"Cannot read {path}: {exc}. The file is truncated or not an IDX file; delete it "
            f"and get it again. {HOW_TO_GET_DATA}"
        ) from exc
    if len(data) < 8:
        raise CorruptDatasetError(f"{path} is too short to be an IDX file ({len(data)} bytes).")
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic not in _IDX_MAGIC.values() or magic != _IDX_MAGIC.get(ndim):
        raise CorruptDatasetError(
            f"{path} has magic number {magic}, expected 2051 (images) or 2049 (labels): it is "
            f"not a uint8 IDX file. {HOW_TO_GET_DATA}"
        )
    header = 4 + 4 * ndim
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(torch.tensor(shape).prod())
    if len(data) != expected:
        raise CorruptDatasetError(
            f"{path} is {len(data)} bytes but its header {shape} needs {expected}: the file "
            f"is truncated or corrupt. Delete it and get it again. {HOW_TO_GET_DATA}"
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).view(*shape)


def _content_md5(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def _find_file(folder: Path, stem: str) -> Path | None:
    """The file ``stem`` (.gz or not) in ``folder`` or in torchvision's ``FashionMNIST/raw``."""
    for directory in (folder, folder / "FashionMNIST" / "raw"):
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    return None


def find_data_files(folder: str | Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder``, by stem, or None if any one is missing."""
    found = {stem: _find_file(Path(folder), stem) for pair in FILES.values() for stem in pair}
    return None if any(p is None for p in found.values()) else found  # type: ignore[return-value]


def locate_data(root: str | Path | None, download: bool, search_system: bool = True) -> dict:
    """Find the data: ``root``, then Debian's system folder, then torchvision's download."""
    tried = []
    candidates = ([Path(root).expanduser()] if root else []) + (
        [SYSTEM_DATA_DIR] if search_system else []
    )
    for folder in candidates:
        files = find_data_files(folder)
        if files:
            log.info("Fashion-MNIST found in %s", folder)
            return files
        tried.append(str(folder))
    if download and root:
        from torchvision.datasets import FashionMNIST

        log.info("Downloading Fashion-MNIST into %s with torchvision", root)
        try:
            for train in (True, False):
                FashionMNIST(str(root), train=train, download=True)
        except Exception as exc:  # network errors come in many types
            tried.append(f"download into {root} ({type(exc).__name__}: {exc})")
        else:
            files = find_data_files(root)
            if files:
                return files
    elif not download:
        tried.append("download (off: data.download=false)")
    raise DatasetNotFoundError(
        f"Fashion-MNIST was not found. Looked in: {'; '.join(tried)}. {HOW_TO_GET_DATA}"
    )


@dataclass
class RawSplits:
    """The official splits as uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor


def load_fashion_mnist(
    root: str | Path | None = None,
    download: bool = False,
    strict: bool = True,
    search_system: bool = True,
) -> RawSplits:
    """Load and check both official splits.

    ``strict`` also checks the split sizes (60,000/10,000) and the content MD5 against the
    original files; tests on tiny synthetic files turn it off.
    """
    files = locate_data(root, download, search_system)
    arrays = {}
    for split, (image_stem, label_stem) in FILES.items():
        images, labels = read_idx(files[image_stem]), read_idx(files[label_stem])
        where = f"{files[image_stem]} / {files[label_stem]}"
        if images.ndim != 3 or tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise CorruptDatasetError(f"{where}: images have shape {tuple(images.shape)}.")
        if labels.ndim != 1 or len(labels) != len(images):
            raise CorruptDatasetError(
                f"{where}: {len(images)} images but labels of shape {tuple(labels.shape)}."
            )
        if len(labels) and int(labels.max()) >= NUM_CLASSES:
            raise CorruptDatasetError(f"{where}: label {int(labels.max())} is outside 0-9.")
        if strict:
            if len(images) != SPLIT_SIZES[split]:
                raise CorruptDatasetError(
                    f"{where}: {len(images)} images, the official {split} split has "
                    f"{SPLIT_SIZES[split]}. {HOW_TO_GET_DATA}"
                )
            for stem in (image_stem, label_stem):
                md5 = _content_md5(files[stem])
                if md5 != CONTENT_MD5[stem]:
                    raise CorruptDatasetError(
                        f"{files[stem]}: MD5 of its content is {md5}, expected "
                        f"{CONTENT_MD5[stem]}: the file is corrupt or not the original. "
                        f"Delete it and get it again. {HOW_TO_GET_DATA}"
                    )
        arrays[split] = (images, labels.long())
    return RawSplits(*arrays["train"], *arrays["test"])


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
        n = len(labels)
        order = torch.randperm(n, device=labels.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield (
                    images[start : start + self.batch_size],
                    labels[start : start + self.batch_size],
                )
            else:
                index = order[start : start + self.batch_size]
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


def _batch_is_ready(batch: Any) -> Any:
    """``collate_fn`` for ``TensorBatchDataset``: its ``__getitems__`` already built the batch."""
    return batch


class FashionMNISTDataModule(L.LightningDataModule):
    """Fashion-MNIST with a seeded stratified validation split and batched GPU-ready transforms.

    Args:
        root: folder searched first for the four IDX files (and where downloads go).
        download: let torchvision download the files when they are found nowhere.
        search_system: also look in Debian's ``/usr/share/datasets/fashion-mnist``.
        strict: check split sizes and content MD5 (off only for synthetic test data).
        val_size: images held out of the official train set for validation (int or fraction).
        split_seed: seed of the stratified train/validation split.
        batch_size, eval_batch_size: batch sizes for training and for val/test.
        normalize: ``"global"`` (one mean/std from the training split), ``"per_pixel"``
            (a mean/std per pixel) or ``"none"`` (pixels only scaled to 0-1).
        flatten: give images as 784-vectors (MLPs, scikit-learn baselines).
        one_hot: give targets as one-hot float vectors instead of class indices.
        crop_padding, hflip, erasing: batched training augmentation (0/False = off).
        num_workers: DataLoader workers; 0 is fastest for in-memory data.
        on_device: keep the whole dataset (uint8, 55 MB) on the trainer's device and draw
            batches there (:class:`DeviceBatches`): ``"auto"`` does so on any accelerator
            with a single process, ``true``/``false`` force it.
    """

    def __init__(
        self,
        root: str | None = "data",
        download: bool = True,
        search_system: bool = True,
        strict: bool = True,
        val_size: int | float = 5000,
        split_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        normalize: str = "global",
        flatten: bool = False,
        one_hot: bool = False,
        crop_padding: int = 0,
        hflip: bool = False,
        erasing: float = 0.0,
        num_workers: int = 0,
        pin_memory: bool = False,
        on_device: bool | str = "auto",
    ) -> None:
        super().__init__()
        if normalize not in ("global", "per_pixel", "none"):
            raise ConfigError(
                f"data.normalize={normalize!r} is not one of 'global', 'per_pixel', 'none'."
            )
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(
                f"data.batch_size={batch_size} and data.eval_batch_size={eval_batch_size} "
                "must be positive integers."
            )
        if not 0.0 <= erasing <= 1.0:
            raise ConfigError(f"data.erasing={erasing} is a probability: give a value in [0, 1].")
        if crop_padding < 0:
            raise ConfigError(f"data.crop_padding={crop_padding} must be >= 0.")
        self.save_hyperparameters()
        self.root, self.download, self.search_system, self.strict = (
            root,
            download,
            search_system,
            strict,
        )
        self.val_size, self.split_seed = val_size, split_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.normalize, self.flatten, self.one_hot = normalize, flatten, one_hot
        self.crop_padding, self.hflip, self.erasing = crop_padding, hflip, erasing
        self.num_workers, self.pin_memory = num_workers, pin_memory
        if on_device not in (True, False, "auto"):
            raise ConfigError(f"data.on_device={on_device!r}: use true, false or auto.")
        self.on_device = on_device
        self.splits: dict[str, TensorBatchDataset] = {}
        # Standardization constants: shape () for "global", (28, 28) for "per_pixel".
        self.mean = torch.tensor(0.0)
        self.std = torch.tensor(1.0)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        raw = load_fashion_mnist(self.root, self.download, self.strict, self.search_system)
        n_train = len(raw.train_labels)
        n_val = (
            round(self.val_size * n_train) if isinstance(self.val_size, float) else self.val_size
        )
        if not 0 < n_val < n_train:
            raise ConfigError(
                f"data.val_size={self.val_size} leaves no images for training or validation: "
                f"the train set has {n_train} images; give a number between 1 and {n_train - 1} "
                "(or a fraction in (0, 1))."
            )
        train_idx, val_idx = train_test_split(
            torch.arange(n_train).numpy(),
            test_size=n_val,
            stratify=raw.train_labels.numpy(),
            random_state=self.split_seed,
        )
        train_idx, val_idx = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
        train_images = raw.train_images[train_idx]
        self.splits = {
            "train": TensorBatchDataset(train_images, raw.train_labels[train_idx]),
            "val": TensorBatchDataset(raw.train_images[val_idx], raw.train_labels[val_idx]),
            "test": TensorBatchDataset(raw.test_images, raw.test_labels),
        }
        self._fit_normalization(train_images)
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
        self.mean, self.std = self.mean.to(device), self.std.to(device)

    def _fit_normalization(self, train_images: Tensor) -> None:
        """Mean and std of the training split only, so validation and test stay unseen."""
        pixels = train_images.double() / 255.0
        if self.normalize == "global":
            self.mean, self.std = pixels.mean().float(), pixels.std().float()
        elif self.normalize == "per_pixel":
            # Border pixels are almost always 0: floor the std so they are not blown up.
            self.mean, self.std = pixels.mean(0).float(), pixels.std(0).float().clamp_min(1e-2)

    def split(self, name: str) -> TensorBatchDataset:
        """The raw (uint8) images and labels of ``train``, ``val`` or ``test``."""
        if not self.splits:
            self.setup()
        if name not in self.splits:
            raise ConfigError(f"Unknown split {name!r}: use 'train', 'val' or 'test'.")
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
            # Under DDP: each val/test image on exactly one process (see fmnist.distributed).
            sampler = eval_sampler(split, self.trainer)
        return DataLoader(
            split,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=_batch_is_ready,
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

    def predict_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader("test", shuffle=False)

    # ----- batched transforms -------------------------------------------------------------

    def scale(self, images: Tensor) -> Tensor:
        """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
        images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        return images.unsqueeze(1) if images.ndim == 3 else images

    def standardize(self, images: Tensor) -> Tensor:
        """Scaled [0, 1] images -> model inputs (standardized, flattened if configured)."""
        if self.normalize != "none":
            mean, std = self.mean.to(images.device), self.std.to(images.device)
            images = (images - mean) / std
        return images.flatten(1) if self.flatten else images

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 images -> model inputs, without augmentation (evaluation and analysis)."""
        return self.standardize(self.scale(images))

    def augment(self, images: Tensor) -> Tensor:
        """Batched training augmentation on scaled (N, 1, 28, 28) images."""
        if self.crop_padding:
            images = augment.random_crop(images, self.crop_padding)
        if self.hflip:
            images = augment.random_hflip(images)
        if self.erasing:
            images = augment.random_erasing(images, self.erasing)
        return images

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        images = self.scale(images)
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images)
        images = self.standardize(images)
        if self.one_hot:
            labels = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
        return images, labels

    # Saved in every checkpoint, so prediction and export use the training statistics.
    def state_dict(self) -> dict[str, Any]:
        return {"normalize": self.normalize, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.mean, self.std = state_dict["mean"], state_dict["std"]


def write_idx(path: str | Path, array: Tensor) -> Path:
    """Write a uint8 tensor as an IDX file (gzip-compressed when ``path`` ends in .gz).

    The inverse of :func:`read_idx`: used to build small datasets for tests and to hand
    image batches to other tools in the original format.
    """
    path = Path(path)
    array = torch.as_tensor(array)
    if array.dtype != torch.uint8 or array.ndim not in _IDX_MAGIC:
        raise ValueError("write_idx takes uint8 tensors of 1 (labels) or 3 (images) dimensions.")
    header = _IDX_MAGIC[array.ndim].to_bytes(4, "big") + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    payload = header + array.contiguous().numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path
