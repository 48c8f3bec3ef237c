"""Pre-activation ResNet / WRN: shapes, the published parameter count, config errors."""

import pytest
import torch

from fmnist.errors import ConfigError
from fmnist.models import PreActResNet
from fmnist.models.cnn import count_parameters


def test_wrn_28_10_has_the_published_parameter_count() -> None:
    # Zagoruyko & Komodakis (2016) report 36.5M for WRN-28-10 on 3-channel CIFAR-10.
    wrn = PreActResNet(blocks=[4, 4, 4], widths=[160, 320, 640], stem_width=16, in_channels=3)
    assert count_parameters(wrn) == 36_479_194


def test_resnet_shapes_and_resolution() -> None:
    model = PreActResNet(blocks=[1, 1, 1], widths=[8, 16, 32]).eval()
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert model.features(x).shape == (3, 32, 7, 7)  # 28 -> 14 -> 7
    assert model.dense(model.features(x)).shape == (3, 32)


def test_resnet_dropout_only_in_training() -> None:
    model = PreActResNet(blocks=[1, 1], widths=[8, 16], dropout=0.5)
    x = torch.randn(2, 1, 28, 28)
    model.train()
    torch.manual_seed(0)
    first = model(x)
    assert not torch.equal(first, model(x))  # training: a new dropout mask every call
    model.eval()
    assert torch.equal(model(x), model(x))  # evaluation: deterministic


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"blocks": [], "widths": []}, r"^model.blocks=\[\]: value should have at least 1 item"),
        ({"blocks": [2, 2], "widths": [8]}, r"^model.blocks=\[2, 2\] .* should be the same length"),
        ({"blocks": [0], "widths": [8]}, r"^model.blocks\[0\]=0 should be greater than 0\.$"),
    ],
)
def test_resnet_rejects_bad_config(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PreActResNet(**kwargs)
