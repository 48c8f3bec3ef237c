"""train(): a whole run through Hydra's compose API on tiny data, and its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import assert_tested
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fmnist.data import CLASS_NAMES
from fmnist.errors import ConfigError
from fmnist.training.load import load_classifier
from fmnist.training.run import train


def test_train_writes_metrics_config_checkpoint_and_logs(tiny_train_cfg, tmp_path: Path) -> None:
    cfg = tiny_train_cfg("model.filters=[8,16]", "model.hidden=32")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    saved = assert_tested(run, 80)
    assert saved["test/acc"] == metrics["test/acc"]
    assert list(saved["per_class"]) == list(CLASS_NAMES)
    assert sum(row["support"] for row in saved["per_class"].values()) == 80
    assert np.array(saved["confusion_matrix"]).sum() == 80
    assert saved["epochs"] == 2
    # The saved config is resolved: no ${...} left, real paths.
    config_text = (run / "config.yaml").read_text()
    assert "${" not in config_text
    assert yaml.safe_load(config_text)["model"]["filters"] == [8, 16]
    assert (
        Path(saved["best_checkpoint"]).is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    )
    # TensorBoard: scalars and an hparams entry with the comparison metrics.
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    scalars = events.Tags()["scalars"]
    for tag in ("train/loss_epoch", "val/acc", "val/acc_best", "test/acc", "hp/test_acc"):
        assert tag in scalars, tag
    assert saved["val/acc_best"] == max(e.value for e in events.Scalars("val/acc"))
    plugin_tags = [t for t in events.summary_metadata if t.startswith("_hparams_")]
    assert plugin_tags, "no hparams entry in the TensorBoard log"


def test_test_metrics_agree_with_scikit_learn(tiny_train_cfg, fake_data_dir) -> None:
    cfg = tiny_train_cfg("model.filters=[8,16]", "module.tta_flip=false")
    metrics = train(cfg)
    module, _ = load_classifier(metrics["best_checkpoint"])
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.setup()
    test = dm.split("test")
    with torch.no_grad():
        predictions = module(test.images).argmax(1).numpy()
    labels = test.labels.numpy()
    assert metrics["test/acc"] == pytest.approx(accuracy_score(labels, predictions), abs=1e-6)
    for average in ("weighted", "macro"):
        p, r, f, _ = precision_recall_fscore_support(
            labels, predictions, average=average, zero_division=0
        )
        assert metrics[f"test/precision_{average}"] == pytest.approx(p, abs=1e-5)
        assert metrics[f"test/recall_{average}"] == pytest.approx(r, abs=1e-5)
        assert metrics[f"test/f1_{average}"] == pytest.approx(f, abs=1e-5)
    p, r, f, support = precision_recall_fscore_support(labels, predictions, zero_division=0)
    for i, name in enumerate(CLASS_NAMES):
        row = metrics["per_class"][name]
        assert row["f1"] == pytest.approx(f[i], abs=1e-5) and row["support"] == support[i]


def test_same_seed_same_result(tiny_train_cfg, tmp_path: Path) -> None:
    first = train(tiny_train_cfg("model.filters=[8]", output_dir=tmp_path / "a"))
    second = train(tiny_train_cfg("model.filters=[8]", output_dir=tmp_path / "b"))
    differ = ("train_time_s", "best_checkpoint")  # the clock, and the two run directories
    assert {k: v for k, v in first.items() if k not in differ} == {
        k: v for k, v in second.items() if k not in differ
    }


def test_resume_from_checkpoint(tiny_train_cfg, tmp_path: Path) -> None:
    # A constant learning rate: a one-cycle schedule is fixed to the first run's length.
    first = tiny_train_cfg(
        "model.filters=[8]", "trainer.max_epochs=1", "scheduler=none", output_dir=tmp_path / "a"
    )
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed = train(
        tiny_train_cfg(
            "model.filters=[8]",
            "trainer.max_epochs=3",
            "scheduler=none",
            f"ckpt_path={last}",
            output_dir=tmp_path / "b",
        )
    )
    assert resumed["epochs"] == 3
    state = torch.load(Path(tmp_path / "b" / "checkpoints" / "last.ckpt"), weights_only=True)
    assert state["epoch"] == 2 and state["global_step"] == 3 * 9  # 260 images / 32 = 9 batches


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=mlp"],
        ["model.filters=[4,8,16,32]"],
        ["data.flatten=true", "model=mlp"],
        ["data.one_hot=true", "scheduler=cosine", "optimizer=sgd"],
        ["trainer=debug"],
    ],
)
def test_configurations_run(tiny_train_cfg, overrides: list[str]) -> None:
    cfg = tiny_train_cfg(*overrides)
    metrics = train(cfg)
    images = 64 if "trainer=debug" in overrides else 80  # debug: one test batch
    assert assert_tested(Path(cfg.paths.output_dir), images) == json.loads(json.dumps(metrics))


def test_learns_the_synthetic_task(tiny_train_cfg) -> None:
    metrics = train(
        tiny_train_cfg(
            "model.filters=[16,32]",
            "trainer.max_epochs=6",
            "data.crop_padding=0",
            "data.hflip=false",
        )
    )
    assert metrics["test/acc"] > 0.8  # chance is 0.1


def test_empty_filters_is_a_config_error(tiny_train_cfg) -> None:
    with pytest.raises(ConfigError, match="model.filters"):
        train(tiny_train_cfg("model.filters=[]"))


def test_unknown_monitor_is_a_config_error(tiny_train_cfg) -> None:
    with pytest.raises(ConfigError, match="monitor"):
        train(tiny_train_cfg("monitor=val/accuracy"))


def test_turning_off_the_logger_or_progress_bar_drops_the_callbacks_that_need_them() -> None:
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar

    from fmnist.training.run import drop_callbacks_the_run_cannot_use

    callbacks = [RichProgressBar(), LearningRateMonitor(), ModelCheckpoint()]
    kept = drop_callbacks_the_run_cannot_use(callbacks, progress_bar=False, has_logger=False)
    assert [type(c) for c in kept] == [ModelCheckpoint]
    assert drop_callbacks_the_run_cannot_use(callbacks, True, True) == callbacks


def test_logger_none_with_the_default_callbacks_trains(tiny_train_cfg) -> None:
    # Lightning alone refuses a LearningRateMonitor without a logger.
    cfg = tiny_train_cfg("logger=none", "trainer.max_epochs=1")
    metrics = train(cfg)
    assert assert_tested(Path(cfg.paths.output_dir), 80)["test/acc"] == metrics["test/acc"]
