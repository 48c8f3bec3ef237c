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


def test_corruption_mix_keeps_the_format_is_seeded_and_spares_the_rest() -> None:
    x = images(160)  # 10 chunks of 16
    out = augment.corruption_mix(x, p=1.0, generator=torch.Generator().manual_seed(2))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    again = augment.corruption_mix(x, p=1.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out, again)
    other = augment.corruption_mix(x, p=1.0, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(out, other)
    chunks_changed = (out != x).view(10, -1).any(1)
    assert chunks_changed.all()  # p=1: every chunk gets an operation
    assert torch.equal(augment.corruption_mix(x, p=0.0), x)

    half = augment.corruption_mix(x.repeat(10, 1, 1, 1), 0.5, torch.Generator().manual_seed(0))
    share = (half != x.repeat(10, 1, 1, 1)).view(100, -1).any(1).float().mean()
    assert 0.3 < share < 0.7  # about half the chunks

    raw = (x * 200).to(torch.uint8)[:, 0]  # uint8 (N, 28, 28) works too
    out = augment.corruption_mix(raw, p=1.0, generator=torch.Generator().manual_seed(2))
    assert out.shape == raw.shape and out.dtype == torch.uint8


def test_the_mix_never_trains_the_evaluation_s_exact_corruptions() -> None:
    """Strengths come from ranges where the evaluation has fixed severities; shot noise, glass
    and motion blur, flips and turns are not trained at all (Gaussian noise and blur are)."""
    from fmnist.data import corruptions as c

    operations = {operation for operation, _ in augment.CORRUPTION_MIX}
    assert all(low < high for _, (low, high) in augment.CORRUPTION_MIX)
    flips = {c.SEVERITIES[name][0] for name in ("hflip", "vflip")}
    untrained = {c.shot_noise, c.glass_blur, c.motion_blur, c.turn, c.inversion, *flips}
    assert not operations & untrained
    assert {c.gaussian_noise, c.gaussian_blur} <= operations


def test_datamodule_applies_the_corruption_mix_only_when_asked(fake_data_dir) -> None:
    from fmnist.data import FashionMNISTDataModule

    def module(share: float) -> FashionMNISTDataModule:
        return FashionMNISTDataModule(root=str(fake_data_dir), download=False,
                                      search_system=False, strict=False, val_size=40,
                                      crop_padding=0, corruption_mix=share)  # fmt: skip

    batch = module(0.0).split("train").images[:64]
    torch.manual_seed(0)
    assert torch.equal(module(0.0).augment(batch), batch[:, None].float() / 255)
    torch.manual_seed(0)
    out = module(1.0).augment(batch)
    assert out.shape == (64, 1, 28, 28) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, batch[:, None] / 255)


def test_alternating_flips_show_every_image_both_ways_over_two_epochs(fake_data_dir) -> None:
    from fmnist.data import FashionMNISTDataModule

    raw = FashionMNISTDataModule(root=str(fake_data_dir), download=False, search_system=False,
                                 strict=False, val_size=40).split("train").images  # fmt: skip
    raw = raw[(raw != raw.flip(-1)).flatten(1).any(1)]  # mirror-symmetric images can't tell
    epochs = [augment.alternating_hflip(raw, epoch) for epoch in range(4)]
    mirrored = [(e == raw.flip(-1)).flatten(1).all(1) for e in epochs]
    assert torch.equal(mirrored[0], ~mirrored[1])  # each image once either way in two epochs
    assert torch.equal(mirrored[0], mirrored[2]) and torch.equal(mirrored[1], mirrored[3])
    assert 0.3 < mirrored[0].float().mean() < 0.7  # about half of them in each epoch
    # the same image gets the same flip wherever it sits in a batch (no index needed)
    order = torch.randperm(len(raw), generator=torch.Generator().manual_seed(0))
    assert torch.equal(augment.alternating_hflip(raw[order], 1), epochs[1][order])


def test_alternating_flips_need_raw_pixels_and_a_known_mode(fake_data_dir) -> None:
    import pytest

    from fmnist.data import FashionMNISTDataModule
    from fmnist.errors import ConfigError

    with pytest.raises(TypeError, match="raw integer pixels"):
        augment.alternating_hflip(images(), 0)
    for mode in ("sometimes", 1):  # 1 == True would otherwise pass and then flip nothing
        with pytest.raises(ConfigError, match=r"^data.hflip=.* a valid boolean or 'alternate'\.$"):
            FashionMNISTDataModule(root=str(fake_data_dir), hflip=mode)
    module = FashionMNISTDataModule(root=str(fake_data_dir), download=False,
                                    search_system=False, strict=False, val_size=40,
                                    crop_padding=0, hflip="alternate")  # fmt: skip
    batch = module.split("train").images[:64]
    for epoch in (0, 1):  # the data module's training augmentation is exactly these flips
        expected = augment.alternating_hflip(batch, epoch)[:, None].float() / 255
        assert torch.equal(module.augment(batch, epoch), expected)
