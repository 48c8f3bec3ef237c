"""Bad input gets a clear error naming the fix, before any training, and no traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES
from hydra.errors import MissingConfigException

from fmnist.cli import run_reporting_errors
from fmnist.errors import ConfigError, OutputDirError
from fmnist.training.run import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.filters=[]", r"^model.filters=\[\]: value should have at least 1 item"),
        ("model.filters=[16,0]", r"^model.filters\[1\]=0 should be greater than 0\.$"),
        ("model.dropout=1.0", r"^model.dropout=1.0 should be less than 1\.$"),
        ("model.dropout=-0.1", r"^model.dropout=-0.1 should be greater than or equal to 0\.$"),
        ("data.batch_size=0", r"^data.batch_size=0 should be greater than 0\.$"),
        ("data.val_size=300", r"data.val_size=300 leaves no images .* between 0 .* and 299"),
        ("data.batch_size=abc", r"^data.batch_size='abc' should be a valid integer\.$"),
        ("data.erasing=lots", r"^data.erasing='lots' should be a valid number\.$"),
        ("data.erasing=1.5", r"^data.erasing=1.5 should be less than or equal to 1\.$"),
        ("data.hflip=1", r"^data.hflip=1 should be a valid boolean or 'alternate'\.$"),
        ("data.normalize=zscore", r"^data.normalize='zscore' should be 'global', 'per_pixel'"),
        ("+data.shuffle=true", r"^data.shuffle=True: unexpected keyword argument\.$"),
        ("module.label_smoothing=1.0", r"^module.label_smoothing=1.0 should be less than 1\.$"),
        ("module.tta_shift=5", r"^module.tta_shift=5 should be less than or equal to 4\.$"),
        ("module.tta_flip=yes", r"^module.tta_flip='yes' should be a valid boolean\.$"),
        ("optimizer.lr=nan", r"^optimizer.lr=nan must be a positive finite number"),
        ("optimizer.lr=-1", r"^optimizer.lr=-1 must be a positive finite number"),
        ("optimizer.lr=fast", r"^optimizer.lr='fast' must be a positive finite number"),
        (
            "optimizer.weight_decay=-1",
            r"^optimizer torch.optim.AdamW refuses its settings: "
            r"Invalid weight_decay value: -1",
        ),  # fmt: skip
        (
            "scheduler.pct_start=2",
            r"^scheduler torch.optim.lr_scheduler.OneCycleLR refuses its settings: .*pct_start",
        ),
    ],
)
def test_invalid_config_values_fail_before_training(tiny_train_cfg, override, words) -> None:
    cfg = tiny_train_cfg(override)
    with pytest.raises(ConfigError, match=words):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()  # no epoch was run


def test_unknown_optimizer_is_named_with_the_choices(tiny_train_cfg) -> None:
    # Hydra itself refuses an unknown config group option, listing the available ones.
    with pytest.raises(
        MissingConfigException, match=r"(?s)optimizer/adamx.*Available options.*adamw.*sgd"
    ):
        tiny_train_cfg("optimizer=adamx")


def test_unwritable_run_directory(tiny_train_cfg, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"  # a file where a directory should go: fails even as root
    blocker.write_text("")
    with pytest.raises(OutputDirError, match=r"Cannot write the run directory .*a_file/run"):
        train(tiny_train_cfg(output_dir=blocker / "run"))


def test_user_errors_print_one_line_and_exit_1(caplog, capsys) -> None:
    def fails() -> None:
        raise ConfigError("model.dropout=2 should be less than 1.")

    with caplog.at_level(logging.ERROR, logger="fmnist"), pytest.raises(SystemExit) as exit_:
        run_reporting_errors(fails)
    assert exit_.value.code == 1
    message = "ConfigError: model.dropout=2 should be less than 1."
    assert caplog.messages == [message]
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.slow
def test_a_failing_multirun_job_does_not_lose_the_others(fake_data_dir, tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            *TINY_OVERRIDES,
            f"data.root={fake_data_dir}",
            "logger=none",
            "callbacks.lr_monitor=null",
            "trainer.max_epochs=1",
            "model.filters=[],[8]",  # job 0 fails with a ConfigError, job 1 must still run
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1  # the sweep reports the failure...
    assert "model.filters=[]: value should have at least 1 item" in result.stderr
    assert not (sweep / "0" / "metrics.json").exists()
    assert (sweep / "1" / "metrics.json").is_file()  # ...after running the other job


@pytest.mark.parametrize(
    ("option", "fix"),
    [("serve", "pip install -e '.[serve]'."), ("not_an_extra", "install the package it names.")],
)
def test_a_logger_without_its_package_names_the_extra(monkeypatch, option, fix) -> None:
    """``logger=mlflow`` without the extra: one line naming the option, the package's own
    error and the extra that brings it, not Hydra's InstantiationException."""
    import sys
    import types

    from omegaconf import OmegaConf

    from fmnist.config import build
    from fmnist.errors import MissingPackageError

    def needs_mlflow(**kwargs):
        raise ModuleNotFoundError("Requirement 'mlflow>=1.0.0' not met")

    monkeypatch.setitem(sys.modules, "fake_logger", types.SimpleNamespace(Logger=needs_mlflow))
    config = OmegaConf.create({"logger": {option: {"_target_": "fake_logger.Logger"}}})
    with pytest.raises(MissingPackageError) as error:
        build(config.logger[option])
    assert str(error.value) == (
        f"logger.{option} (fake_logger.Logger) needs a package that is not installed: "
        f"Requirement 'mlflow>=1.0.0' not met; {fix}"
    )
