"""EpochLines: one plain line per epoch, for people who read a log rather than a terminal."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
from rich import get_console

from fmnist.callbacks.learning_curves import SOURCES

log = logging.getLogger(__name__)


class EpochLines(L.Callback):
    """Log one line per epoch (epoch, optimizer steps, train loss, validation accuracy,
    seconds, training images per second), always into the run's log file (``train.log``).

    Rich's bar draws for terminals only: under nohup, SLURM or CI it leaves no line per
    epoch (Lightning issue 10876). So on a terminal the bar stays and these lines go to the
    log file alone; elsewhere the bar is turned off and the lines go to the console as well.
    """

    def __init__(self) -> None:
        self.console, self.start, self.images = True, 0.0, 0

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and bar.is_enabled and not get_console().is_terminal:
            bar.disable()
        self.console = bar is None or not bar.is_enabled

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start, self.images = time.perf_counter(), 0

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        self.images += len(batch[0])

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        seconds = time.perf_counter() - self.start
        metrics = trainer.callback_metrics
        loss = next((metrics[n] for n in SOURCES["train/loss"] if n in metrics), None)
        acc = metrics.get("val/acc")
        # a run bounded by steps (max_epochs=-1, as the timed presets) counts toward its steps
        epochs = "" if trainer.max_epochs in (None, -1) else f"/{trainer.max_epochs}"
        steps = f"/{trainer.max_steps:,}" if trainer.max_steps > 0 else ""
        line = (
            f"Epoch {trainer.current_epoch + 1}{epochs}: "
            f"step {trainer.global_step:,}{steps}, "
            f"train/loss {'-' if loss is None else f'{float(loss):.4f}'}, "
            f"val/acc {'-' if acc is None else f'{100 * float(acc):.2f}%'}, "
            f"{seconds:.1f} s, {self.images * trainer.world_size / seconds:,.0f} images/s"
        )
        write_line(line, self.console)


def write_line(line: str, console: bool) -> None:
    """``line`` at INFO through this module's logger; without ``console`` only to the root
    logger's file handlers (Hydra's ``train.log``), so it never breaks into a drawn bar."""
    if console:
        log.info(line)
    elif log.isEnabledFor(logging.INFO):
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, line, None, None)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)
