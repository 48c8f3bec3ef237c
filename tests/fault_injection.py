"""Callbacks that break a run on purpose, added from the command line in tests:
``+callbacks.kill._target_=fault_injection.KillAt`` (``tests/`` on PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig


class KillAt(L.Callback):
    """Send ``signal_name`` to this very process at batch ``batch`` of epoch ``epoch``:
    a run killed mid-epoch, as by the OOM killer (SIGKILL) or a scheduler (SIGTERM).
    With ``stage="test"``, at batch ``batch`` of testing instead (after the last epoch).
    In a multirun, ``job`` kills only that job; ``once`` (a file, written then) kills only
    the first start: the same command run again is not killed."""

    def __init__(
        self,
        epoch: int = 0,
        batch: int = 0,
        signal_name: str = "SIGKILL",
        stage: str = "train",
        job: int | None = None,
        once: str | None = None,
    ) -> None:
        self.epoch, self.batch, self.signal = epoch, batch, getattr(signal, signal_name)
        self.stage, self.job, self.once = stage, job, once

    def _kill(self) -> None:
        if self.job is not None and HydraConfig.get().job.num != self.job:
            return
        if self.once is not None:
            if Path(self.once).exists():
                return
            Path(self.once).touch()
        os.kill(os.getpid(), self.signal)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = trainer.current_epoch == self.epoch and batch_idx == self.batch
        if self.stage == "train" and now:
            self._kill()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if self.stage == "test" and batch_idx == self.batch:
            self._kill()


class InjectNaN(L.Callback):
    """Overwrite the first weight with NaN at batch ``batch`` of epoch ``epoch``: before its
    forward pass, or after its optimizer step with ``after_step``."""

    def __init__(self, epoch: int, batch: int = 0, after_step: bool = False) -> None:
        self.epoch, self.batch, self.after_step = epoch, batch, after_step

    def _inject(self, trainer, pl_module, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.after_step:
            self._inject(trainer, pl_module, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.after_step:
            self._inject(trainer, pl_module, batch_idx)


def fill_disk(directory: str | Path) -> None:
    """Write into ``directory`` until its filesystem has no space left."""
    with (Path(directory) / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


class FillDiskAfterTest(L.Callback):
    """Fill the run directory's disk once testing is done: the disk that fills up (another
    process, a log) between the last checkpoint and ``metrics.json``."""

    def on_test_end(self, trainer, pl_module) -> None:
        fill_disk(trainer.default_root_dir)


class FillDiskAfterTraining(L.Callback):
    """Fill the run directory's disk when training ends, before the end-of-fit figures."""

    def on_train_end(self, trainer, pl_module) -> None:
        fill_disk(trainer.default_root_dir)


class KillWhileWriting(L.Callback):
    """SIGKILL this process in the middle of writing a file whose name contains ``name``, the
    ``nth`` time one is written, seen through Python's audit hooks (``sys.addaudithook``):

    - ``at="open"``: right after a file of that name is opened for writing (and so
      truncated, which is done here before dying): the final file itself when it is written
      in place, or its temporary file;
    - ``at="rename"``: right before a file is renamed onto the final name.
    """

    def __init__(self, name: str = "last.ckpt", nth: int = 2, at: str = "open") -> None:
        self.name, self.nth, self.at, self.seen = name, nth, at, 0
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if event == "open" and self.at == "open" and isinstance(args[0], str | bytes):
            path, mode, flags = args
            writing = "w" in mode if mode else bool(flags & (os.O_WRONLY | os.O_RDWR))
            if writing and self.name in os.path.basename(os.fsdecode(path)):  # or its temp file
                self._count(lambda: os.path.exists(path) and os.truncate(path, 0))
        elif event == "os.rename" and self.at == "rename" and self._named(args[1]):
            self._count(lambda: None)

    def _named(self, path) -> bool:
        return isinstance(path, str | bytes) and os.path.basename(os.fsdecode(path)) == self.name

    def _count(self, before_dying) -> None:
        self.seen += 1
        if self.seen == self.nth:
            before_dying()
            os.kill(os.getpid(), signal.SIGKILL)
