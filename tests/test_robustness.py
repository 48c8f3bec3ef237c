"""Fashion-MNIST-C on the fly: the corruptions."""

from __future__ import annotations

import pytest
import torch

from fmnist.data.corruptions import CORRUPTIONS, corrupt, severities
from fmnist.data.synthetic import make_images
from fmnist.errors import ConfigError

#: Corruptions with five severities (the flips and turns have one).
GRADED = [name for name in CORRUPTIONS if len(severities(name)) == 5]


def items(n: int = 200) -> torch.Tensor:
    """uint8 (n, 28, 28) stand-ins for Fashion-MNIST items: the synthetic data's bright square
    on a dark, slightly noisy background, plus a blob whose shading covers every grey level
    (the square alone has two levels, too few to show solarization's thresholds)."""
    generator = torch.Generator().manual_seed(3)
    centre = 8 + 12 * torch.rand(n, 2, 1, 1, generator=generator)
    rows, cols = torch.arange(28.0)[:, None], torch.arange(28.0)[None, :]
    blob = 255 * torch.exp(-((rows - centre[:, 0]) ** 2 + (cols - centre[:, 1]) ** 2) / 40)
    square = make_images(torch.arange(n) % 10, seed=3).float()
    return torch.maximum(square, blob).round().to(torch.uint8)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_is_seeded_keeps_the_format_and_changes_the_image(name: str) -> None:
    x = items()
    for severity in severities(name):
        out = corrupt(x, name, severity, seed=7)
        assert out.shape == x.shape and out.dtype == torch.uint8
        assert torch.equal(out, corrupt(x, name, severity, seed=7))
        changed = (out != x).flatten(1).any(1)
        assert changed.all(), f"{name} {severity}: {int((~changed).sum())} images unchanged"
    # The same corruption of 0-1 floats (N, 1, H, W): the same images, up to uint8 rounding.
    unit = corrupt(x[:, None].float() / 255, name, 1, seed=7)
    assert unit.shape == (len(x), 1, 28, 28) and unit.dtype == torch.float32
    assert (unit[:, 0] * 255 - corrupt(x, name, 1, seed=7).float()).abs().max() <= 1.0


@pytest.mark.parametrize("name", ["shot_noise", "impulse_noise", "glass_blur", "motion_blur"])
def test_random_corruptions_follow_the_seed(name: str) -> None:
    x = items()
    assert not torch.equal(corrupt(x, name, 3, seed=0), corrupt(x, name, 3, seed=1))


@pytest.mark.parametrize("name", GRADED)
def test_severity_is_monotone_in_the_distance_from_the_clean_image(name: str) -> None:
    x = items()
    distance = [
        float((corrupt(x, name, s, seed=0).float() - x.float()).abs().mean())
        for s in severities(name)
    ]
    assert all(a < b for a, b in zip(distance, distance[1:], strict=False)), distance


def test_flips_and_turns_are_exact() -> None:
    x = items(20)
    assert torch.equal(corrupt(x, "hflip", 1), x.flip(-1))
    assert torch.equal(corrupt(x, "vflip", 1), x.flip(-2))
    assert torch.equal(corrupt(x, "rot180", 1), x.flip(-1).flip(-2))
    assert torch.equal(corrupt(corrupt(x, "rot90", 1), "rot270", 1), x)
    assert torch.equal(corrupt(x, "inversion", 5), 255 - x)  # threshold 0: everything
    with pytest.raises(ConfigError, match="severities"):
        corrupt(x, "hflip", 2)
    with pytest.raises(ConfigError, match="Unknown corruption"):
        corrupt(x, "fog", 1)
