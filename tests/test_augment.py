"""Batched augmentation and test-time flips on known inputs."""

import torch

from fmnist.data import augment


def images(n: int = 64) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) + 0.1


def test_flip_of_a_flip_is_identity() -> None:
    x = images()
    once = augment.random_hflip(x, p=1.0)
    assert torch.equal(once, x.flip(-1))
    assert torch.equal(augment.random_hflip(once, p=1.0), x)
    assert torch.equal(augment.random_hflip(x, p=0.0), x)


def test_flip_is_per_image() -> None:
    x = images(200)
    out = augment.random_hflip(x, p=0.5, generator=torch.Generator().manual_seed(1))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert 60 < flipped.sum() < 140  # about half, and not all-or-nothing


def test_crop_keeps_shape_and_shifts_content() -> None:
    x = images()
    out = augment.random_crop(x, padding=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(augment.random_crop(x, padding=0), x)
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3))
    for i in range(len(x)):  # every crop is some 28x28 window of the padded image
        windows = padded[i, 0].unfold(0, 28, 1).unfold(1, 28, 1)  # (7, 7, 28, 28)
        assert (windows == out[i, 0]).flatten(2).all(2).any()


def test_erasing_stays_inside_the_image_and_within_scale() -> None:
    x = images(500)
    out = augment.random_erasing(
        x, p=1.0, scale=(0.02, 0.25), value=0.0, generator=torch.Generator().manual_seed(0)
    )
    erased = out == 0  # x is > 0.1 everywhere, so zeros are erased pixels
    share = erased.flatten(1).float().mean(1)
    assert torch.all(share > 0) and torch.all(share <= 0.40)  # rounding may exceed 0.25 a bit
    for mask in erased[:, 0]:  # one axis-aligned rectangle
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert mask.sum() == h * w
    assert torch.equal(augment.random_erasing(x, p=0.0), x)


def test_augmentation_is_reproducible_with_a_seed() -> None:
    x = images()
    a = augment.random_erasing(
        augment.random_crop(x, 2, torch.Generator().manual_seed(5)),
        0.5,
        generator=torch.Generator().manual_seed(6),
    )
    b = augment.random_erasing(
        augment.random_crop(x, 2, torch.Generator().manual_seed(5)),
        0.5,
        generator=torch.Generator().manual_seed(6),
    )
    assert torch.equal(a, b)
