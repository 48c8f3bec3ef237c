"""Timing helpers shared by the benchmark parts."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch

T = TypeVar("T")


def synchronize() -> None:
    """Wait for queued GPU work, so wall-clock times measure it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class FitTimer(L.Callback):
    """Writes the training loop's wall time (train start to train end), step count and images
    trained to ``path`` as JSON: the loop time without data loading from disk or the test, and
    the images that achieved GFLOP/s are counted over (a last short batch counts as short)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.start = 0.0
        self.images = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize()
        self.start = time.perf_counter()
        self.images = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        self.images += len(batch[0])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize()
        elapsed = time.perf_counter() - self.start
        self.path.parent.mkdir(parents=True, exist_ok=True)
        report = {"loop_s": elapsed, "steps": trainer.global_step, "images": self.images}
        self.path.write_text(json.dumps(report))


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the OS has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


@dataclass(frozen=True)
class LoadGuard:
    """Runs a piece of the benchmark when the machine is quiet, and records how quiet it was.

    On 2 cores another process's work shows directly in our wall times. Before each piece it
    waits up to ``max_wait_s`` for the 1-minute load average to fall to ``limit`` (the bench's
    own previous piece keeps it near 2 for a minute after it ends); a piece that still
    started above ``limit`` is run once more and the second result kept.
    """

    limit: float = 1.5
    max_wait_s: float = 120.0
    poll_s: float = 5.0
    repeat: bool = True

    def _wait_for_quiet(self) -> float:
        """Seconds waited for the load to fall to the limit (or for ``max_wait_s``)."""
        waited = 0.0
        while waited < self.max_wait_s and (load_average() or [0.0])[0] > self.limit:
            time.sleep(self.poll_s)
            waited += self.poll_s
        return waited

    def run(self, piece: Callable[[], T]) -> tuple[T, dict[str, Any]]:
        """``piece()``, and the load record: before/after each attempt, whether repeated."""
        attempts: list[dict[str, Any]] = []
        while True:
            waited = self._wait_for_quiet()
            before = load_average()
            result = piece()
            attempts.append({"before": before, "after": load_average(), "waited_s": waited})
            loaded = before is not None and before[0] > self.limit
            if not (loaded and self.repeat and len(attempts) == 1):
                break
        record = {**attempts[-1], "limit": self.limit, "repeated": len(attempts) > 1}
        if len(attempts) > 1:
            record["first_attempt"] = attempts[0]
        return result, record
