"""Explaining a model: activations, permutation importance, callbacks and analyze task=model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from fmnist.analysis.activations import capture_activations, channel_statistics, one_per_class
from fmnist.analysis.importance import (
    accuracy_and_macro_f1,
    channel_permuted_predictions,
    cut,
    layer_importance,
    permutation_importance,
    permuted_predictions,
    predict_all,
    region_importance,
)
from fmnist.errors import CheckpointError
from fmnist.models import CNN


class TwoPathNet(nn.Module):
    """``dense`` outputs 4 channels: 0 and 1 carry the label, 2 and 3 carry noise that
    ``classifier`` ignores (zero weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Flatten()
        self.classifier = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[1.0, -1.0, 0, 0], [-1.0, 1.0, 0, 0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dense(x))


def test_ignored_channels_score_zero_and_label_channels_high() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (400,), generator=g)
    x = torch.randn(400, 4, generator=g) * 0.1
    x[:, 0] += (labels == 0).float()
    x[:, 1] += (labels == 1).float()
    x[:, 2:] = torch.randn(400, 2, generator=g) * 5  # loud but ignored downstream
    result = layer_importance(TwoPathNet(), x, labels, "dense", n_repeats=3, num_classes=2)
    drops = np.array(result["accuracy"]["importances_mean"])
    assert result["baseline"]["accuracy"] == 1.0
    assert drops[2] == 0 and drops[3] == 0
    assert drops[0] > 0.2 and drops[1] > 0.2
    assert np.array(result["accuracy"]["importances"]).shape == (4, 3)
    assert result["summary"]["accuracy"]["channels_that_matter"] == 2


def test_batched_metrics_agree_with_scikit_learn() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (300,), generator=g)
    predictions = torch.randint(0, 10, (5, 300), generator=g)
    predictions[0] = labels
    predictions[1, :] = 3  # one predicted class only: zero-division cases
    got = accuracy_and_macro_f1(predictions, labels, 10)
    for p in range(5):
        assert got[p, 0] == pytest.approx(accuracy_score(labels, predictions[p]))
        expected = f1_score(labels, predictions[p], average="macro", zero_division=0)
        assert got[p, 1] == pytest.approx(expected)


def _briefly_trained_cnn(filters=(4, 8)) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from bench.synthetic import make_images

    torch.manual_seed(0)
    labels = torch.arange(10).repeat(20)
    x = (make_images(labels, 3).float() / 255).unsqueeze(1)
    net = CNN(filters=list(filters), batch_norm=False, dropout=0.0, hidden=16)
    optimizer = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), labels).backward()
        optimizer.step()
    return net.eval(), x, labels


def whole_layer_drop(net: nn.Module, inputs, labels, layer: str, seed: int = 0) -> float:
    """The naive score (accuracy drop when a layer's whole output is shuffled across
    samples): the trap, the same for every layer of a sequential net."""
    activations, rest, _ = cut(net.eval(), layer, inputs)
    permutation = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones((1,) * activations.ndim, dtype=torch.bool)
    predictions = permuted_predictions(rest, activations, mask, permutation.unsqueeze(0))
    baseline = predict_all(rest, activations)
    both = accuracy_and_macro_f1(torch.stack([baseline, predictions[0]]), labels, 10)
    return float(both[0, 0] - both[1, 0])


def test_layers_differ_while_whole_layer_shuffling_collapses() -> None:
    net, x, labels = _briefly_trained_cnn()
    result = permutation_importance(net, x, labels, n_repeats=2)
    joint = [v["summary"]["accuracy"]["joint_drop"] for v in result["layers"].values()]
    per_channel = [v["summary"]["accuracy"]["channel_drop_mean"] for v in result["layers"].values()]
    assert result["baseline"]["accuracy"] > 0.5
    assert len(set(np.round(joint, 6))) > 1 and len(set(np.round(per_channel, 6))) > 1
    naive = [whole_layer_drop(net, x, labels, layer) for layer in result["layers"]]
    assert max(naive) - min(naive) < 1e-9  # the trap: every layer gets the same score
    assert naive[0] > 0.5


def test_same_seed_same_result_and_fast_path_matches_generic() -> None:
    net, x, labels = _briefly_trained_cnn()
    first = permutation_importance(net, x[:60], labels[:60], n_repeats=2, seed=3)
    assert first == permutation_importance(net, x[:60], labels[:60], n_repeats=2, seed=3)
    assert first != permutation_importance(net, x[:60], labels[:60], n_repeats=2, seed=4)
    activations, rest, suffix = cut(net, "features.0", x)  # a conv block follows: delta path
    assert suffix == ["features.1", "pool", "dense", "classifier"]
    channels = torch.arange(4).repeat_interleave(2)
    permutations = torch.rand(8, len(x), generator=torch.Generator().manual_seed(0)).argsort(1)
    fast = channel_permuted_predictions(net, rest, suffix, activations, channels, permutations)
    masks = torch.nn.functional.one_hot(channels, 4).bool().view(8, 4, 1, 1)
    generic = permuted_predictions(rest, activations, masks, permutations, 500)
    assert (fast == generic).float().mean() > 0.999  # float rounding may flip a near-tie
    _, hooked, no_chain = cut(Unchained(net), "net.features.0", x)  # rerun with a hook
    assert no_chain is None
    assert torch.equal(permuted_predictions(hooked, activations, masks, permutations, 500), generic)


class Unchained(nn.Module):
    """A network whose forward is no chain of its children (it adds 0 after them)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("zero", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.zero


def test_the_hook_path_gives_the_chain_paths_numbers(monkeypatch) -> None:
    """With the chain speed-up switched off, the same layers rerun the whole network with a
    forward hook: the same importance, up to a prediction that float rounding flips."""
    import fmnist.analysis.importance as importance

    net, x, labels = _briefly_trained_cnn()
    chained = permutation_importance(net, x[:100], labels[:100], n_repeats=2)
    monkeypatch.setattr(importance, "stages_after", lambda *_: None)
    hooked = permutation_importance(net, x[:100], labels[:100], n_repeats=2)
    assert list(hooked["layers"]) == ["features.0", "features.1", "dense"]
    for layer, result in chained["layers"].items():
        for metric in ("accuracy", "f1_macro"):
            np.testing.assert_allclose(
                hooked["layers"][layer][metric]["importances"],
                result[metric]["importances"],
                atol=0.011,  # one of 100 predictions
            )


def test_region_importance_finds_the_square() -> None:
    net, x, labels = _briefly_trained_cnn()
    result = region_importance(net, x, labels, patch=4, n_repeats=1)
    heat = np.array(result["class_heatmaps"])
    assert heat.shape == (10, 7, 7) and np.array(result["heatmap"]).shape == (7, 7)
    # The class squares lie in pixel rows 2-13 (patch rows 0-3); rows 16-27 hold only noise.
    assert heat[:, :4].mean() > heat[:, 4:].mean()


@pytest.mark.parametrize("filters", [[4], [4, 8], [4, 8, 16, 32]])
def test_activation_shapes(filters) -> None:
    net = CNN(filters=filters, hidden=8)
    labels = torch.arange(10).repeat(3)
    index = one_per_class(labels, seed=0)
    assert sorted(labels[index].tolist()) == list(range(10))
    outputs = capture_activations(net, torch.randn(10, 1, 28, 28))
    size = 28
    for i, width in enumerate(filters):
        size = size // 2 if size >= 2 else size
        assert outputs[f"features.{i}"].shape == (10, width, size, size)
    stats = channel_statistics(outputs["features.0"])
    assert len(stats["mean"]) == filters[0] and all(0 <= z <= 1 for z in stats["zero_share"])


def test_callbacks_write_files_and_tensorboard(tiny_train_cfg) -> None:
    from fmnist.training.run import train

    cfg = tiny_train_cfg(
        "model.filters=[4,8]",
        "model.hidden=8",
        "callbacks.activation_capture.every_n_epochs=1",
        "callbacks.permutation_importance.samples=40",
    )
    train(cfg)
    run = Path(cfg.paths.output_dir)
    importance = json.loads((run / "importance.json").read_text())
    assert set(importance["layers"]) == {"features.0", "features.1", "dense"}
    assert len(importance["layers"]["features.1"]["accuracy"]["importances_mean"]) == 8
    curves = json.loads((run / "learning_curves.json").read_text())
    assert len(curves["history"]["val/acc"]) == 2 and len(curves["history"]["train/acc"]) == 2
    for name in ("importance.png", "learning_curves.png", "activations/final_features.0.png"):
        assert (run / name).stat().st_size > 1000, name
    assert (run / "activations/epoch001_features.1.png").is_file()
    images = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0}).Reload()
    tags = images.Tags()["images"]
    for tag in ("permutation_importance", "learning_curves", "activations/features.0"):
        assert tag in tags, tag


def test_analyze_model_on_a_checkpoint_and_bad_checkpoints(tiny_train_cfg, tmp_path) -> None:
    from fmnist.tasks import run_analysis
    from fmnist.training.run import train
    from tests.conftest import TINY_OVERRIDES, compose_config

    metrics = train(
        tiny_train_cfg(
            "model.filters=[4,8]",
            "model.hidden=8",
            "callbacks.permutation_importance=null",
            "callbacks.activation_capture=null",
            "callbacks.lr_monitor=null",
            "logger=none",
            "test=false",
        )
    )
    ckpt = Path(tiny_train_cfg().paths.output_dir) / "checkpoints" / "last.ckpt"
    del metrics
    data_overrides = [o for o in TINY_OVERRIDES if o.startswith("data.")]
    out = tmp_path / "analysis"
    cfg = compose_config(
        "analyze",
        [
            *data_overrides,
            "task=model",
            f"ckpt={ckpt}",
            "task.samples=40",
            "task.n_repeats=1",
        ],
        out,
        Path(tiny_train_cfg().data.root),
    )
    report = run_analysis(cfg).read_text()
    for name in (
        "confusion_matrix",
        "confident_mistakes",
        "importance",
        "activations_features_0",
        "top_channels_features_1",
        "region_importance",
    ):
        assert (out / f"{name}.png").stat().st_size > 1000 and f"{name}.png" in report, name
    assert "| Trouser |" in report

    contents = torch.load(ckpt, weights_only=True)
    contents["hyper_parameters"]["net"]["filters"] = [4, 16]  # weights no longer fit
    bad = tmp_path / "mismatch.ckpt"
    torch.save(contents, bad)
    for path, words in (
        (bad, "do not fit"),
        (tmp_path / "missing.ckpt", "does not exist"),
        (tmp_path / "corrupt.ckpt", "corrupt"),
    ):
        if path.name == "corrupt.ckpt":
            path.write_bytes(b"not a checkpoint")
        cfg.ckpt = str(path)
        with pytest.raises(CheckpointError, match=words):
            run_analysis(cfg)
