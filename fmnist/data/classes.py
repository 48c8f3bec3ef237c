"""The ten Fashion-MNIST classes and the image size: the one place they are defined."""

from __future__ import annotations

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
