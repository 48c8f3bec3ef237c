"""Models of other shapes, added the documented way (README "Your own model"): a Python file
in fmnist/models/ and a YAML file in conf/model/. Each trains a few batches, tests, writes
metrics.json, leaves its activations and permutation importance (or the one-line skip),
then predicts (with the OOD score) and exports. The transformer is the repo's worked
example (fmnist/models/vit.py); the two others are written into a folder of the package's
search path for the test, exactly as a user's file in fmnist/models/ would be found."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import fmnist.models
from bench.synthetic import make_images
from fmnist.analysis.stages import default_layers, logits_layer, network_stages
from fmnist.callbacks.outputs import model_inputs
from fmnist.data import FashionMNISTDataModule
from fmnist.errors import ConfigError
from fmnist.inference.export import export_torchscript, exportable
from fmnist.inference.predict import predict
from fmnist.training.load import load_classifier

USER_MODELS = {
    "branchy.py": '''
        import torch
        from torch import Tensor, nn


        class BranchNet(nn.Module):
            """Two convolution branches joined by concatenation and a residual add."""

            def __init__(self, width: int = 8, num_classes: int = 10) -> None:
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.MaxPool2d(2))
                self.left = nn.Conv2d(width, width, 3, padding=1)
                self.right = nn.Conv2d(width, width, 5, padding=2)
                self.mix = nn.Conv2d(2 * width, width, 1)
                self.out = nn.Linear(width, num_classes)

            def forward(self, x: Tensor) -> Tensor:
                x = torch.relu(self.stem(x))
                branches = torch.cat([torch.relu(self.left(x)), torch.relu(self.right(x))], 1)
                return self.out(torch.relu(self.mix(branches) + x).mean((2, 3)))
        ''',
    "perceptron.py": """
        from torch import Tensor, nn


        class Perceptron(nn.Module):
            def __init__(self, hidden: int = 32, num_classes: int = 10) -> None:
                super().__init__()
                self.layers = nn.Sequential(
                    nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
                )

            def forward(self, x: Tensor) -> Tensor:
                return self.layers(x)
        """,
}
USER_CONFIGS = {
    "branchy": "_target_: fmnist.models.branchy.BranchNet\nwidth: 8\n",
    "perceptron": "_target_: fmnist.models.perceptron.Perceptron\nhidden: 32\n",
}
MEMBER_LAYERS = ["features.0", "features.1", "features.2", "dense", "classifier"]
#: model config -> (layers analysed, those with feature-map pictures, those left out)
EXPECTED = {
    "vit": (["embed"], ["embed"], ["encoder.layers.0", "encoder.layers.1"]),
    "branchy": (["stem", "left", "right", "mix"], ["stem", "left", "right", "mix"], []),
    "perceptron": (["layers.1"], [], []),
    # each member's own layers; the OOD score reads the members' logits, the ensemble's layer
    # `average` outputs the logits
    "ensemble": (
        [f"members.{m}.{layer}" for m in "01" for layer in MEMBER_LAYERS],
        [f"members.{m}.features.{b}" for m in "01" for b in "012"],
        [],
    ),
}


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The two user models as files of the ``fmnist.models`` package and their YAML files;
    returns the config folder to add to Hydra's search path."""
    package = tmp_path / "user_models"
    package.mkdir()
    for name, source in USER_MODELS.items():
        (package / name).write_text(textwrap.dedent(source))
    monkeypatch.setattr(fmnist.models, "__path__", [*fmnist.models.__path__, str(package)])
    conf = tmp_path / "user_conf"
    (conf / "model").mkdir(parents=True)
    for name, text in USER_CONFIGS.items():
        (conf / "model" / f"{name}.yaml").write_text(text)
    return conf


@pytest.mark.parametrize("model", list(EXPECTED))
def test_a_new_model_trains_tests_explains_predicts_and_exports(
    model, user_models, tiny_train_cfg, fake_data_dir, tmp_path, caplog
) -> None:
    from fmnist.training.run import train

    cfg = tiny_train_cfg(
        f"model={model}",
        f"hydra.searchpath=[file://{user_models}]",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=5",
        "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
        "callbacks.permutation_importance.samples=40",
        "callbacks.permutation_importance.n_repeats=1",
    )
    with caplog.at_level(logging.WARNING, logger="fmnist.analysis.stages"):
        metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    written = json.loads((run / "metrics.json").read_text())
    assert 0 <= written["test/acc"] <= 1 and written["test/acc"] == metrics["test/acc"]

    analysed, pictured, left_out = EXPECTED[model]
    stats = json.loads((run / "activations" / "final_stats.json").read_text())
    importance = json.loads((run / "importance.json").read_text())
    assert list(stats) == analysed and list(importance["layers"]) == analysed
    assert list(importance["skipped"]) == left_out
    for layer in left_out:  # one line each, from each of the two callbacks
        lines = [r for r in caplog.records if f"Layer {layer} is left out" in r.getMessage()]
        assert len(lines) == 2
    ckpt = Path(metrics["best_checkpoint"])
    module, settings = load_classifier(ckpt)
    for layer in analysed:
        units = stats[layer]["channels"]
        assert len(importance["layers"][layer]["accuracy"]["importances_mean"]) == units
    assert [x for x in analysed if (run / "activations" / f"final_{x}.png").is_file()] == pictured

    # The importance baseline is the network's own accuracy on those images, found apart.
    data = FashionMNISTDataModule(fake_data_dir, search_system=False, strict=False, **settings)
    val = data.split("val")
    logits = module.net.eval()(model_inputs(module, val.images)).argmax(1)
    assert importance["baseline"]["accuracy"] == pytest.approx(
        float((logits == val.labels).double().mean())
    )

    images = make_images(torch.arange(10), seed=5)
    np.save(tmp_path / "items.npy", images.numpy())
    predict_cfg = {
        "ckpt": str(ckpt),
        "images": str(tmp_path / "items.npy"),
        "batch_size": 4,
        "top_k": 3,
        "output": str(tmp_path / "predictions.csv"),
        "print_limit": 0,
        "progress": False,
        "ood": {
            "enabled": True,
            "data_root": str(fake_data_dir),
            "search_system": False,
            "strict": False,
            "pass_rate": 0.9,
        },
    }
    predictions = predict(OmegaConf.create(predict_cfg))
    expected = module.predict_proba(images)
    got = torch.tensor([p.probability for p in predictions])
    torch.testing.assert_close(got, expected.max(1).values, rtol=1e-5, atol=1e-6)
    assert all(p.ood_score is not None for p in predictions)  # the OOD features were found

    exported = torch.jit.load(str(export_torchscript(exportable(ckpt), tmp_path / "model.pt")))
    with torch.no_grad():
        torch.testing.assert_close(exported(images), module(images), rtol=1e-4, atol=1e-4)


class ScaledLogits(nn.Module):
    """Its forward changes the logits after the last layer: no module outputs them."""

    logits_layer = "head"

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)) * 2


def test_logits_layer_is_found_by_a_hook_or_named_by_the_model() -> None:
    x = torch.randn(2, 1, 28, 28)
    assert logits_layer(ScaledLogits(), x) == "head"
    del ScaledLogits.logits_layer
    try:
        assert logits_layer(ScaledLogits(), x) is None
        assert default_layers(ScaledLogits(), x) == ["body", "head"]
    finally:
        ScaledLogits.logits_layer = "head"
    assert default_layers(ScaledLogits(), x) == ["body", "head"]  # the name is for OOD only
    assert network_stages(ScaledLogits(), x) is None  # * 2 is no chain of its children


def test_every_model_class_in_the_package_is_allowed_and_nothing_else(user_models) -> None:
    from fmnist.models import build_net, model_classes

    allowed = model_classes()
    assert allowed["fmnist.models.CNN"] is allowed["fmnist.models.cnn.CNN"]  # old checkpoints
    assert "fmnist.models.branchy.BranchNet" in allowed and "fmnist.models.vit.ViT" in allowed
    net = build_net({"_target_": "fmnist.models.perceptron.Perceptron", "hidden": 4})
    assert net.layers[1].out_features == 4
    for target in ("torch.nn.Linear", "os.system", "fmnist.models.model_classes"):
        with pytest.raises(ConfigError, match="is not one of"):
            build_net({"_target_": target})
    with pytest.raises(ConfigError, match=r"lacks \['net', 'preprocess'\]"):
        build_net({"_target_": "fmnist.models.preprocess.Classifier"})  # a part, not a model


def test_named_layers_anywhere_and_the_ones_analysis_cannot_picture(caplog) -> None:
    """Any module can be named; one whose output is not (N, units) or (N, channels, H, W),
    or that runs more than once per forward pass, is left out with one log line each."""
    from fmnist.analysis.stages import layer_outputs
    from fmnist.models import PreActResNet
    from fmnist.models.vit import ViT

    x = torch.randn(3, 1, 28, 28)
    resnet = PreActResNet([1, 1], [4, 8]).eval()
    names = ["features.1.conv1", "features.1.relu", "features.1"]
    with caplog.at_level(logging.WARNING, logger="fmnist.analysis.stages"):
        outputs, skipped = layer_outputs(resnet, x, names)
        _, vit_skipped = layer_outputs(ViT(), x, ["encoder.layers.0.self_attn"])
    assert outputs["features.1.conv1"].shape == (3, 4, 28, 28)
    assert torch.equal(outputs["features.1"], resnet.features[:2](x))
    assert skipped == {"features.1.relu": "runs 2 times per forward pass, not once"}
    assert list(vit_skipped) == ["encoder.layers.0.self_attn"]  # a tuple (or no call at all)
    assert len(caplog.records) == 2
    with pytest.raises(ConfigError, match="Unknown layers"):
        layer_outputs(resnet, x, ["features.9"])
