"""Model shapes and config errors."""

import numpy as np
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
        ({"filters": []}, r"^model.filters=\[\]: value should have at least 1 item"),
        ({"filters": [32, 0]}, r"^model.filters\[1\]=0 should be greater than 0\.$"),
        ({"dropout": 1.0}, r"^model.dropout=1.0 should be less than 1\.$"),
        ({"dropout": -0.1}, r"^model.dropout=-0.1 should be greater than or equal to 0\.$"),
        ({"kernel_size": 4}, r"^model.kernel_size=4 should be odd"),
        ({"hidden": -1}, r"^model.hidden=-1 should be greater than or equal to 0\.$"),
        ({"batch_norm": 1}, r"^model.batch_norm=1 should be a valid boolean\.$"),
    ],
)
def test_cnn_rejects_bad_config(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        CNN(**kwargs)
    with pytest.raises(ConfigError, match=r"^model.filters\[1\]=0 "):  # given by position
        CNN([16, 0])


def test_mlp_takes_images_or_vectors() -> None:
    model = MLP(hidden=[64, 32]).eval()
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert model(torch.randn(5, 784)).shape == (5, 10)
    with pytest.raises(ConfigError, match=r"^model.hidden\[0\]=0 should be greater than 0\.$"):
        MLP(hidden=[0])


def test_pool_early_pools_before_norm_and_keeps_shapes() -> None:
    model = CNN([16, 48, 96], pool_early=True).eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    block = [type(m).__name__ for m in model.features[0]]
    assert block == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    late = [type(m).__name__ for m in CNN([16, 48]).features[0]]
    assert late == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    first = CNN([16, 48], convs_per_block=2, pool_first=True).eval()
    block = [type(m).__name__ for m in first.features[0]]
    assert block == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    sizes = []  # each block's second conv runs at half its first's resolution
    for conv in (first.features[0][4], first.features[1][0], first.features[1][4]):
        conv.register_forward_hook(lambda _, args, out: sizes.append(tuple(args[0].shape[2:])))
    assert first(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sizes == [(14, 14), (14, 14), (7, 7)]


def test_dirac_init_makes_each_convs_first_filters_pass_their_input_through() -> None:
    net = CNN(filters=[4, 8], convs_per_block=2, dirac_init=True, batch_norm=True)
    convs = [m for m in net.features.modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.randn(2, 8, 6, 6)
    for conv in convs:
        inputs = x[:, : conv.in_channels]
        out = torch.nn.functional.conv2d(inputs, conv.weight, padding=1)
        torch.testing.assert_close(out[:, : conv.in_channels], inputs)  # identity filters
        if conv.out_channels > conv.in_channels:  # the other filters keep their random init
            assert conv.weight[conv.in_channels :].abs().sum() > 0


def test_shift_tta_averages_the_image_and_its_diagonal_translations() -> None:
    """tta_shift=1: the mean of the network over the image moved one pixel up-left, the
    image, and the image moved one pixel down-right (zeros fill in); with flips, each mirror too."""
    from fmnist.models.preprocess import Classifier, Preprocess

    class Probe(torch.nn.Module):  # logits = the pixels themselves: views add up visibly
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)

    images = torch.zeros(1, 1, 5, 5)
    images[0, 0, 2, 3] = 1.0
    expected = images.clone()
    expected[0, 0, 1, 2] += 1.0  # moved up-left
    expected[0, 0, 3, 4] += 1.0  # moved down-right
    classifier = Classifier(Probe(), Preprocess("none"), tta_shift=1)
    torch.testing.assert_close(classifier.raw_logits(images), expected.flatten(1) / 3)
    assert classifier.views == 3
    classifier.tta_flip = True
    mirrored = torch.zeros(1, 1, 5, 5)  # the mirror's pixel is at (2, 1), then moved the same ways
    mirrored[0, 0, 2, 1] = mirrored[0, 0, 1, 0] = mirrored[0, 0, 3, 2] = 1.0
    torch.testing.assert_close(classifier.raw_logits(images), (expected + mirrored).flatten(1) / 6)
    assert classifier.views == 6


def test_a_model_config_builds_through_hydra_with_its_lists() -> None:
    from omegaconf import OmegaConf

    from fmnist.config import build

    config = OmegaConf.create({"model": {"_target_": "fmnist.models.CNN", "filters": [8, 16]}})
    assert [b.out_channels for b in build(config.model).features] == [8, 16]  # a ListConfig
    config.model.filters = [8, 0]
    with pytest.raises(ConfigError, match=r"^model.filters\[1\]=0 should be greater than 0\.$"):
        build(config.model)


def test_an_ensemble_averages_its_members_probabilities_and_trains_each_on_its_own_loss() -> None:
    from fmnist.models import build_net
    from fmnist.training.module import ClassificationModule

    torch.manual_seed(0)
    config = {"_target_": "fmnist.models.Ensemble", "members": 3, "filters": [4, 8], "hidden": 8}
    module = ClassificationModule(config, label_smoothing=0.1)
    ensemble, x = module.net, torch.randn(5, 1, 28, 28)
    first, second = ensemble.members["0"], ensemble.members["1"]
    assert not torch.equal(first.features[0][0].weight, second.features[0][0].weight)
    ensemble.eval()
    each = np.stack([net(x).softmax(1).detach().numpy() for net in ensemble.members.values()])
    np.testing.assert_allclose(ensemble(x).softmax(1).detach().numpy(), each.mean(0), atol=1e-6)

    ensemble.train()  # dropout and batch norm in training mode: each member's seeded pass
    targets = torch.tensor([0, 3, 9, 3, 1])
    torch.manual_seed(1)
    module._loss(ensemble(x), targets).backward()
    torch.manual_seed(1)
    alone = [torch.nn.functional.cross_entropy(net(x), targets, label_smoothing=0.1)
             for net in ensemble.members.values()]  # fmt: skip
    expected = torch.autograd.grad(alone[0], list(first.parameters()))
    for param, grad in zip(first.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad, grad)  # the others' losses do not reach it
    with pytest.raises(ConfigError, match="members are networks"):
        build_net({"_target_": "fmnist.models.Ensemble", "member": "fmnist.models.Ensemble"})
    with pytest.raises(ConfigError, match="is not an argument of fmnist.models.CNN"):
        build_net({"_target_": "fmnist.models.Ensemble", "widths": [4]})
