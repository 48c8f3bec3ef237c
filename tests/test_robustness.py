"""Fashion-MNIST-C on the fly: the corruptions, the robustness task and the callback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES, compose_config

from bench.synthetic import make_images
from fmnist.analysis.importance import evaluation_subset
from fmnist.data.corruptions import CORRUPTIONS, corrupt, severities
from fmnist.errors import ConfigError
from fmnist.training.predictions import load_predictions
from fmnist.training.run import train

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


QUICK = ["model.filters=[4,8]", "model.hidden=16", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null",
         "trainer.max_epochs=3"]  # fmt: skip


def test_callback_and_task_agree_with_the_run_test(tiny_train_cfg, fake_data_dir, tmp_path):
    """The callback's numbers land in metrics.json; the task's clean row is the checkpoint's
    test accuracy on the same images, and it writes its table, heatmap and examples."""
    from fmnist.tasks import run_analysis

    cfg = tiny_train_cfg(*QUICK, "callbacks.robustness.enabled=true",
                         "callbacks.robustness.samples=null")  # fmt: skip
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    from_callback = json.loads((run / "robustness.json").read_text())
    predictions = load_predictions(run / "predictions.npz")
    correct = predictions["predicted"] == predictions["labels"]
    assert from_callback["clean_acc"] == correct.mean()
    assert from_callback["clean_acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)  # float32
    stored = json.loads((run / "metrics.json").read_text())
    assert stored["test/mean_corruption_acc"] == from_callback["mean_corruption_acc"]
    accuracies = from_callback["accuracy"].values()
    assert sum(len(accs) for accs in accuracies) == 10 * 5 + 5  # severities: 5, flips 1
    mean = np.mean([np.mean(accs) for accs in accuracies])
    assert stored["test/mean_corruption_acc"] == pytest.approx(mean, abs=1e-12)

    data = [o for o in TINY_OVERRIDES if o.startswith("data.")]
    out = tmp_path / "analysis"
    overrides = [*data, "task=robustness", f"ckpt={metrics['best_checkpoint']}",
                 "task.samples=50", "task.examples=1", "seed=4"]  # fmt: skip
    report = run_analysis(compose_config("analyze", overrides, out, fake_data_dir)).read_text()
    result = json.loads((out / "robustness.json").read_text())
    expected = correct[evaluation_subset(80, 50, seed=4).numpy()].mean()
    assert result["images"] == 50 and result["clean_acc"] == pytest.approx(expected, abs=1e-12)
    mean = np.mean([np.mean(accs) for accs in result["accuracy"].values()])
    assert result["mean_corruption_acc"] == pytest.approx(mean)
    assert result["drop"] == pytest.approx(result["clean_acc"] - mean)
    assert set(result["worst_per_class"]) >= {"Trouser", "Ankle boot"}
    for name in ("robustness_heatmap", "corruption_examples"):
        assert (out / f"{name}.png").stat().st_size > 1000 and f"{name}.png" in report
    assert f"| clean | {100 * expected:.2f} |" in report
    assert "| rot90 |" in report and "| Trouser |" in report


def test_callback_refuses_a_bad_sample_count() -> None:
    from fmnist.callbacks import Robustness

    with pytest.raises(ConfigError, match="samples=0"):
        Robustness(enabled=True, samples=0)


def test_the_robust_preset_is_the_measured_recipe_plus_the_corruption_mix(tmp_path) -> None:
    from omegaconf import OmegaConf

    from fmnist.data import FashionMNISTDataModule

    default = OmegaConf.to_container(compose_config("train", [], tmp_path), resolve=True)
    robust = OmegaConf.to_container(compose_config("train", ["experiment=robust"], tmp_path),
                                    resolve=True)  # fmt: skip
    assert default["data"].pop("corruption_mix") == 0.0
    assert robust["data"].pop("corruption_mix") == 0.5
    # It keeps the recipe it was measured with, from before the default took up flips and
    # flip and shift TTA: those differ, and nothing else.
    assert (default["data"].pop("hflip"), robust["data"].pop("hflip")) == (True, False)
    for key, without in (("tta_flip", False), ("tta_shift", 0)):
        assert default["module"].pop(key) != without == robust["module"].pop(key)
    assert robust == default
    with pytest.raises(ConfigError, match="corruption_mix=1.5"):
        FashionMNISTDataModule(corruption_mix=1.5)
