"""Model shapes and config errors."""

import pytest
import torch

from fmnist.errors import ConfigError
from fmnist.models import CNN, MLP
from fmnist.models.cnn import count_parameters


@pytest.mark.parametrize("filters", [[16], [16, 32], [32, 64, 128], [32, 64, 128, 256], [8] * 6])
def test_cnn_output_shape_for_any_depth(filters: list[int]) -> None:
    model = CNN(filters=filters).eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert len(model.features) == len(filters)
    assert [b.out_channels for b in model.features] == filters


def test_cnn_options_change_the_network() -> None:
    base = count_parameters(CNN([32, 64], hidden=128))
    assert count_parameters(CNN([32, 64], hidden=64)) < base
    assert count_parameters(CNN([32, 64], global_pool=True)) < base
    assert count_parameters(CNN([32, 64], convs_per_block=2)) > base
    no_bn = CNN([32, 64], batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in no_bn.modules())
    assert CNN([32, 64], kernel_size=5, hidden=0).eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"filters": []}, "non-empty list"),
        ({"filters": [32, 0]}, "positive channel"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"dropout": -0.1}, "[0, 1)"),
        ({"kernel_size": 4}, "odd"),
    ],
)
def test_cnn_rejects_bad_config(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace(")", r"\)")):
        CNN(**kwargs)


def test_mlp_takes_images_or_vectors() -> None:
    model = MLP(hidden=[64, 32]).eval()
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert model(torch.randn(5, 784)).shape == (5, 10)
    with pytest.raises(ConfigError):
        MLP(hidden=[0])


def test_pool_early_pools_before_norm_and_keeps_shapes() -> None:
    model = CNN([16, 48, 96], pool_early=True).eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    block = [type(m).__name__ for m in model.features[0]]
    assert block == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    late = [type(m).__name__ for m in CNN([16, 48]).features[0]]
    assert late == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
