"""Timing helpers shared by the benchmark parts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch


def synchronize() -> None:
    """Wait for queued GPU work, so wall-clock times measure it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class FitTimer(L.Callback):
    """Writes the training loop's wall time (train start to train end) and step count to
    ``path`` as JSON: what the benchmark calls training time, without data loading from disk
    or the test."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.start = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize()
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize()
        elapsed = time.perf_counter() - self.start
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"loop_s": elapsed, "steps": trainer.global_step}))
