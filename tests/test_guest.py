"""An analysis callback is a guest: when it fails, one line says so and the run is tested."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_OVERRIDES, assert_tested, compose_config
from torch import nn

from fmnist.callbacks import Guest
from fmnist.errors import ConfigError
from fmnist.training.run import train

REFERENCE = Path(__file__).parent / "fixtures" / "reference_run"


class BoomBox(Guest):
    """Fails at fit end and in the test; counts the calls that got through."""

    def __init__(self) -> None:
        self.calls = 0

    def on_fit_end(self, trainer, module) -> None:
        self.calls += 1
        module.eval()  # left half-done: the guard puts the modes back
        raise RuntimeError("no grid for this network\nsecond line")

    def on_test_epoch_end(self, trainer, module) -> None:
        raise ConfigError("callbacks.boom.level=3 is too loud: use 1 or 2.")


def test_a_failing_hook_logs_one_line_restores_the_modes_and_sits_out(caplog) -> None:
    guest, module = BoomBox(), nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    module.train()
    module[1].eval()  # a mixed state, kept exactly
    with caplog.at_level(logging.INFO, logger="fmnist.callbacks.guest"):
        assert guest.on_fit_end(None, module) is None
        guest.on_fit_end(None, module)  # sits out: not called again
    assert guest.failed and guest.calls == 1
    assert [m.training for m in module.modules()] == [True, True, False]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        "BoomBox failed: RuntimeError: no grid for this network; the run goes on without it "
        "(callbacks.boom_box=null turns it off)"
    ]
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="fmnist.callbacks.guest"):
        BoomBox().on_test_epoch_end(None, module)
    assert caplog.messages == [  # our errors name their fix: no type prefix
        "BoomBox failed: callbacks.boom.level=3 is too loud: use 1 or 2; the run goes on "
        "without it (callbacks.boom_box=null turns it off)"
    ]


def test_failing_analysis_changes_no_number_of_the_run(fake_data_dir, tmp_path, caplog) -> None:
    """The reference run (tests/test_reference_run.py) with its activation capture and
    permutation importance pointed at layers the network lacks, and a guest failing at fit
    end and in the test: each logs its line, and metrics.json and predictions.npz are still
    the reference's, to the bit."""
    recipe = ["data.hflip=false", "module.tta_flip=false", "module.tta_shift=0"]
    failing = ["callbacks.activation_capture.layers=[head]",
               "callbacks.permutation_importance.layers=[head]",
               "+callbacks.boom_box._target_=test_guest.BoomBox"]  # fmt: skip
    overrides = ["model.filters=[8,16]", "trainer.max_epochs=1", "logger=none", "seed=0"]
    cfg = compose_config("train", [*TINY_OVERRIDES, *overrides, *recipe, *failing],
                         tmp_path / "run", fake_data_dir)  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="fmnist.callbacks.guest"):
        train(cfg)
    assert [m.split(":")[0] for m in caplog.messages] == [
        "ActivationCapture failed",
        "PermutationImportance failed",
        "BoomBox failed",
    ]
    assert "Unknown layers ['head']" in caplog.messages[0]
    assert caplog.messages[1].endswith("(callbacks.permutation_importance=null turns it off)")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in ("train_time_s", "best_checkpoint"):
        metrics.pop(key)
    assert metrics == json.loads((REFERENCE / "metrics.json").read_text())
    now, before = (
        np.load(tmp_path / "run" / "predictions.npz"),
        np.load(REFERENCE / "predictions.npz"),
    )
    for name in before.files:
        np.testing.assert_array_equal(now[name], before[name])
    assert (tmp_path / "run" / "learning_curves.json").is_file()  # the next guest still ran


@pytest.mark.parametrize("hook", ["on_train_epoch_end", "on_test_start"])
def test_every_hook_a_guest_defines_is_guarded(hook: str) -> None:
    def fails(self, trainer, module) -> None:
        raise ValueError(hook)

    guest = type("Failing", (Guest,), {hook: fails})()
    assert not guest.failed
    getattr(guest, hook)(None, nn.Linear(1, 1))
    assert guest.failed


def test_a_vit_run_is_tested_when_its_analysis_fails(tiny_train_cfg, caplog) -> None:
    """The issue's case: a network that is not our CNN trains, then its analysis fails."""
    cfg = tiny_train_cfg("model=vit", "trainer.max_epochs=1", "+trainer.limit_train_batches=3",
                         "callbacks.activation_capture.layers=[head.proj]",
                         "+callbacks.boom_box._target_=test_guest.BoomBox")  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="fmnist.callbacks.guest"):
        metrics = train(cfg)
    assert [m.split(" failed")[0] for m in caplog.messages] == ["ActivationCapture", "BoomBox"]
    assert assert_tested(Path(cfg.paths.output_dir), 80)["test/acc"] == metrics["test/acc"]
    assert metrics["per_class"]["Bag"]["support"] == 8
