"""The tasks of ``analyze.py``: each builds a report in the run directory from a config.

A task is a function ``(cfg, report) -> None`` registered in ``TASKS``; ``task=data`` style
aliases run several in one report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from fmnist.analysis.report import Report
from fmnist.errors import ConfigError

log = logging.getLogger(__name__)

Task = Callable[[DictConfig, Report], None]

#: Task name -> function. Filled in by the modules that implement the tasks.
TASKS: dict[str, Task] = {}
#: Names that run several tasks into one report.
ALIASES: dict[str, tuple[str, ...]] = {}


def run_analysis(cfg: DictConfig) -> Path:
    """Run ``cfg.task`` and write ``report.md`` (and figures) into the run directory."""
    from torch.utils.tensorboard import SummaryWriter

    names = ALIASES.get(cfg.task, (cfg.task,))
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        choices = ", ".join(sorted([*TASKS, *ALIASES]))
        raise ConfigError(f"task={cfg.task!r} is not an analysis task: use one of {choices}.")
    output_dir = Path(cfg.paths.output_dir)
    writer = SummaryWriter(str(output_dir / "tensorboard"))
    report = Report(output_dir, title=f"Fashion-MNIST analysis: {cfg.task}", writer=writer)
    try:
        for name in names:
            log.info("Task %s", name)
            TASKS[name](cfg, report)
    finally:
        path = report.write()
        writer.close()
    log.info("Wrote %s", path)
    return path


# The modules that implement tasks register them on import (at the end: they import TASKS).
from fmnist.analysis.tasks import data, model  # noqa: E402, F401
