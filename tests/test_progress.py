"""EpochLines (fmnist/callbacks/progress.py): one plain line per epoch, with the run's values;
on a terminal the Rich bar stays and the lines go to the log file alone."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console

from fmnist.callbacks.progress import EpochLines, write_line
from fmnist.training.run import train

LINE = re.compile(
    r"Epoch (\d+)/2: step (\d+), train/loss ([\d.]+), val/acc ([\d.]+)%, [\d.]+ s, [\d,]+ images/s"
)


def test_one_line_per_epoch_with_the_values_of_the_csv_table(tiny_train_cfg, caplog) -> None:
    cfg = tiny_train_cfg("model.filters=[4]", "model.hidden=8", "logger=csv",
                         "callbacks.activation_capture=null", "callbacks.learning_curves=null",
                         "callbacks.permutation_importance=null")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="fmnist.callbacks.progress"):
        train(cfg)
    lines = [LINE.fullmatch(r.getMessage()) for r in caplog.records if r.name.endswith("progress")]
    assert all(lines) and len(lines) == 2
    epochs: dict[int, dict[str, str]] = {}  # the table's rows of an epoch, merged
    with (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["train/loss_epoch"] or row["val/acc"]:
                epochs.setdefault(int(row["epoch"]), {}).update({k: v for k, v in row.items() if v})
    for line, (epoch, row) in zip(lines, sorted(epochs.items()), strict=True):
        assert int(line[1]) == epoch + 1 and int(line[2]) == int(row["step"]) + 1
        assert float(line[3]) == pytest.approx(float(row["train/loss_epoch"]), abs=5e-5)
        assert float(line[4]) == pytest.approx(100 * float(row["val/acc"]), abs=5e-3)


def test_a_run_bounded_by_steps_counts_its_steps_not_epochs(caplog) -> None:
    trainer = SimpleNamespace(
        is_global_zero=True, callback_metrics={}, world_size=1,
        current_epoch=2, max_epochs=-1, max_steps=21500, global_step=1407,
    )  # fmt: skip
    callback = EpochLines()
    callback.on_train_epoch_start(trainer, None)
    with caplog.at_level(logging.INFO, logger="fmnist.callbacks.progress"):
        callback.on_train_epoch_end(trainer, None)
    (record,) = caplog.records
    assert record.getMessage().startswith("Epoch 3: step 1,407/21,500, train/loss -, val/acc -, ")


@pytest.mark.parametrize("terminal", [True, False])
def test_the_bar_draws_on_a_terminal_only_and_the_lines_go_where_it_does_not(
    terminal: bool, monkeypatch, caplog, tmp_path: Path
) -> None:
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: terminal))
    bar = RichProgressBar()
    callback = EpochLines()
    callback.setup(SimpleNamespace(progress_bar_callback=bar), None, "fit")
    assert bar.is_enabled is terminal and callback.console is not terminal

    file = logging.FileHandler(tmp_path / "train.log")
    logging.getLogger().addHandler(file)
    try:
        with caplog.at_level(logging.INFO):
            write_line("Epoch 1/1: ...", callback.console)
    finally:
        logging.getLogger().removeHandler(file)
        file.close()
    assert (tmp_path / "train.log").read_text() == "Epoch 1/1: ...\n"  # always in the file
    assert [r.getMessage() for r in caplog.records] == ([] if terminal else ["Epoch 1/1: ..."])
