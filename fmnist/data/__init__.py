"""Fashion-MNIST data: the IDX files, the classes, batches, augmentation and the DataModule.

Reading order: ``classes`` (names, image size) -> ``idx`` (the file format) -> ``files``
(finding and checking the four files) -> ``batches`` (in-memory batching) -> ``augment`` ->
``datamodule`` (the ``LightningDataModule``). Tests and ``bench`` write a tiny stand-in with
``bench/synthetic.py``.
"""

from fmnist.data.classes import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from fmnist.data.datamodule import FashionMNISTDataModule
from fmnist.data.files import FILES, SYSTEM_DATA_DIR, load_fashion_mnist, locate_data
from fmnist.data.idx import read_idx

__all__ = [
    "CLASS_NAMES",
    "FILES",
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "SYSTEM_DATA_DIR",
    "FashionMNISTDataModule",
    "load_fashion_mnist",
    "locate_data",
    "read_idx",
]
