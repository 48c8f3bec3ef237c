"""One inference path, metric names defined once, strict files, presets that must exist.

Every way to use a trained model (the run's own test, ``analyze.py task=model``, prediction,
TorchScript and ONNX export) goes through the model's ``Classifier``; these tests check
that they give the same answers on the same images, for each preprocessing and with TTA.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONF_DIR, TINY_OVERRIDES, assert_tested, compose_config
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from fmnist.data import FashionMNISTDataModule
from fmnist.inference.export import export_onnx, export_torchscript, exportable
from fmnist.inference.predict import predict
from fmnist.training.load import load_classifier
from fmnist.training.run import train

QUICK = ["model.filters=[4,8]", "model.hidden=16", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null"]  # fmt: skip


def strict_json(path: Path) -> dict:
    """Parse as a strict reader would: NaN/Infinity are errors, not numbers."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def synthetic_test_split(data_dir: Path):
    dm = FashionMNISTDataModule(
        root=str(data_dir), download=False, search_system=False, strict=False, val_size=40
    )
    dm.setup()
    return dm.split("test")


def test_monitor_val_loss_keeps_the_lowest_loss_epoch(tiny_train_cfg) -> None:
    cfg = tiny_train_cfg(*QUICK, "monitor=val/loss", "trainer.max_epochs=4", "optimizer.lr=0.03")
    assert cfg.callbacks.model_checkpoint.mode == "min"
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    losses = strict_json(run / "learning_curves.json")["history"]["val/loss"]
    assert len(losses) == 4
    assert metrics["monitor"] == {
        "name": "val/loss",
        "mode": "min",
        "best": pytest.approx(min(losses)),
    }
    epoch = int(re.search(r"epoch_(\d+)", metrics["best_checkpoint"]).group(1))
    assert epoch == int(np.argmin(losses))  # the tested checkpoint is the lowest-loss epoch
    assert strict_json(run / "metrics.json")["monitor"]["best"] == pytest.approx(min(losses))


def test_default_monitor_keeps_the_highest_accuracy(tiny_train_cfg) -> None:
    cfg = tiny_train_cfg(*QUICK, "trainer.max_epochs=3")
    assert cfg.callbacks.model_checkpoint.mode == "max"
    metrics = train(cfg)
    accuracies = strict_json(Path(cfg.paths.output_dir) / "learning_curves.json")["history"]
    assert metrics["monitor"]["best"] == pytest.approx(max(accuracies["val/acc"]))
    assert metrics["val/acc_best"] == pytest.approx(max(accuracies["val/acc"]))


def test_metrics_json_is_strict_without_validation(tiny_train_cfg) -> None:
    cfg = tiny_train_cfg(
        *QUICK,
        "callbacks.model_checkpoint=null",
        "callbacks.last_checkpoint=null",
        "+trainer.limit_val_batches=0",
    )
    train(cfg)
    saved = strict_json(Path(cfg.paths.output_dir) / "metrics.json")
    assert saved["monitor"]["best"] is None and saved["val/acc_best"] is None
    assert assert_tested(Path(cfg.paths.output_dir), 80) == saved  # the final weights, tested


@pytest.mark.parametrize("group, typo", [("experiment", "speeedrun"), ("hparams_search", "optuan")])
def test_a_mistyped_preset_is_an_error_listing_the_presets(group: str, typo: str) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        with pytest.raises(MissingConfigException) as error:
            compose("train", overrides=[f"{group}={typo}"])
        assert compose("train", overrides=[]).get("task_name") == "train"  # none is fine
    GlobalHydra.instance().clear()
    available = {"experiment": "speedrun", "hparams_search": "optuna"}[group]
    assert typo in str(error.value) and available in str(error.value)


@pytest.fixture(scope="module")
def tta_run(tmp_path_factory, fake_data_dir) -> tuple[Path, dict]:
    """A tiny CNN trained with flip and shift TTA: its test metrics are the reference."""
    out = tmp_path_factory.mktemp("tta")
    cfg = compose_config(
        "train",
        [
            *TINY_OVERRIDES,
            *QUICK,
            "module.tta_flip=true",
            "module.tta_shift=1",
            "data.hflip=true",
            "trainer.max_epochs=3",
        ],
        out,
        fake_data_dir,
    )
    return out, train(cfg)


def test_tta_answers_agree_through_test_analyze_predict_and_export(
    tta_run, fake_data_dir, tmp_path
) -> None:
    from fmnist.tasks import run_analysis

    run, metrics = tta_run
    ckpt = Path(metrics["best_checkpoint"])
    test = synthetic_test_split(fake_data_dir)
    module, _ = load_classifier(ckpt)
    assert module.hparams.tta_flip and module.hparams.tta_shift == 1
    with torch.no_grad():
        logits = module(test.images)
    predicted = logits.argmax(1)
    accuracy = float((predicted == test.labels).double().mean())
    assert metrics["test/acc"] == pytest.approx(accuracy, abs=1e-6)
    assert not torch.equal(module.classifier.net_logits(test.images), logits)  # TTA counts

    data = [o for o in TINY_OVERRIDES if o.startswith("data.")]
    overrides = [*data, "task=model", f"ckpt={ckpt}", "task.samples=20", "task.n_repeats=1"]
    cfg = compose_config("analyze", overrides, tmp_path / "analysis", fake_data_dir)
    run_analysis(cfg)
    evaluation = strict_json(tmp_path / "analysis" / "evaluation.json")
    assert evaluation["acc"] == pytest.approx(metrics["test/acc"], abs=1e-9)
    assert evaluation["confusion_matrix"] == metrics["confusion_matrix"]

    np.save(tmp_path / "test.npy", test.images.numpy())
    predict_cfg = OmegaConf.create({"ckpt": str(ckpt), "images": str(tmp_path / "test.npy"),
                                    "invert": False, "batch_size": 7, "top_k": 3, "output": None,
                                    "print_limit": 0, "progress": False})  # fmt: skip
    predictions = predict(predict_cfg)
    assert [p.label for p in predictions] == predicted.tolist()
    probabilities = logits.softmax(1)
    assert [p.probability for p in predictions] == pytest.approx(
        probabilities.max(1).values.tolist(), abs=1e-6
    )

    scripted = torch.jit.load(str(export_torchscript(exportable(ckpt), tmp_path / "m.pt")))
    torch.testing.assert_close(scripted(test.images), logits, rtol=1e-5, atol=1e-5)
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (extra: export)")
    path = export_onnx(exportable(ckpt), tmp_path / "m.onnx", "uint8")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"images": test.images.numpy()})
    np.testing.assert_allclose(onnx_logits, logits.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("normalize", ["global", "per_pixel", "none"])
def test_each_normalization_travels_in_the_checkpoint(
    normalize: str, tiny_train_cfg, fake_data_dir, tmp_path
) -> None:
    cfg = tiny_train_cfg(*QUICK, f"data.normalize={normalize}", "trainer.max_epochs=1")
    metrics = train(cfg)
    ckpt = Path(metrics["best_checkpoint"])
    module, settings = load_classifier(ckpt)
    assert settings["normalize"] == normalize == module.hparams.normalize
    test = synthetic_test_split(fake_data_dir)
    preprocess = module.classifier.preprocess
    if normalize == "none":
        assert torch.equal(preprocess.mean, torch.tensor(0.0))
    else:  # the training split's statistics, not the initial 0/1
        assert float(preprocess.std.min()) != 1.0
    with torch.no_grad():
        logits = module(test.images)
    assert metrics["test/acc"] == pytest.approx(
        float((logits.argmax(1) == test.labels).double().mean()), abs=1e-6
    )
    scripted = torch.jit.load(str(export_torchscript(exportable(ckpt), tmp_path / "m.pt")))
    torch.testing.assert_close(scripted(test.images), logits, rtol=1e-5, atol=1e-5)
    probabilities = module.predict_proba(test.images, batch_size=5)
    torch.testing.assert_close(probabilities, logits.softmax(1), rtol=1e-5, atol=1e-6)
