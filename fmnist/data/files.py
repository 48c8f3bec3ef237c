"""Finding the four Fashion-MNIST IDX files, checking them, and loading both official splits."""

from __future__ import annotations

import gzip
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from fmnist.data.classes import IMAGE_SIZE, NUM_CLASSES
from fmnist.data.idx import read_idx
from fmnist.errors import CorruptDatasetError, DatasetNotFoundError

log = logging.getLogger(__name__)

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


def _content_md5(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _find_file(folder: Path, stem: str) -> Path | None:
    """The file ``stem`` (.gz or not) in ``folder`` or in torchvision's ``FashionMNIST/raw``."""
    for directory in (folder, folder / "FashionMNIST" / "raw"):
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    return None


def find_data_files(folder: str | Path, warn: bool = False) -> dict[str, Path] | None:
    """The four IDX files in ``folder``, by stem, or None if any one is missing. With
    ``warn``, a folder holding only some says so: the search goes on elsewhere, and silently
    training on another copy of the data would hide the mistake."""
    found = {stem: _find_file(Path(folder), stem) for pair in FILES.values() for stem in pair}
    missing = [stem for stem, path in found.items() if path is None]
    if warn and 0 < len(missing) < len(found):
        log.warning(
            "data.root=%s holds only %d of the four Fashion-MNIST files (missing: %s); "
            "looking elsewhere. Add the missing files there or fix data.root.",
            folder,
            len(found) - len(missing),
            ", ".join(missing),
        )
    return None if missing else found  # type: ignore[return-value]


def locate_data(root: str | Path | None, download: bool, search_system: bool = True) -> dict:
    """Find the data: ``root``, then Debian's system folder, then torchvision's download."""
    tried = []
    candidates = ([Path(root).expanduser()] if root else []) + (
        [SYSTEM_DATA_DIR] if search_system else []
    )
    for folder in candidates:
        files = find_data_files(folder, warn=bool(root) and folder == candidates[0])
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
                log.info("Fashion-MNIST found in %s", root)
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
        try:
            images, labels = read_idx(files[image_stem]), read_idx(files[label_stem])
        except CorruptDatasetError as exc:
            raise CorruptDatasetError(f"{exc} {HOW_TO_GET_DATA}") from exc
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
