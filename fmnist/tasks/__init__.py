"""The tasks of ``analyze.py``: each builds a report in the run directory.

A task is a function ``(cfg, report, **options) -> None``, and ``conf/task/<name>.yaml`` names
it in ``_target_`` with ``_partial_: true`` and lists its options: Hydra's ``task=<name>``
picks the file, ``task.<option>=...`` overrides an option, and ``hydra.utils.instantiate``
binds the options, leaving the call with the whole config (data, seed, ckpt) and the report.
Functions rather than classes because a task runs once and keeps nothing. Adding a task is
one YAML file and one function; there is no registry to fill.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from fmnist.config import build
from fmnist.files import ensure_writable_dir
from fmnist.results.report import Report
from fmnist.training.run import instantiate_each
from fmnist.training.rundir import run_dir_lock

log = logging.getLogger(__name__)


def run_analysis(cfg: DictConfig) -> Path:
    """Run ``cfg.task`` and write ``report.md`` (and figures, also to the loggers of
    ``cfg.logger``) into the run directory, which it holds alone (the lock of ``train.py``'s
    run directories)."""
    task = build(cfg.task)
    output_dir = ensure_writable_dir(cfg.paths.output_dir, "run directory")
    # The name given as task=: Hydra records it; a config composed without it (tests) has none.
    name = HydraConfig.get().runtime.choices.get("task") if HydraConfig.initialized() else None
    title = f"Fashion-MNIST analysis: {name}" if name else "Fashion-MNIST analysis"
    with run_dir_lock(output_dir):  # a second analysis there would overwrite report.md
        report = Report(output_dir, title=title, loggers=instantiate_each(cfg.get("logger")))
        status = "failed"
        try:
            log.info("Task %s", name or cfg.task.get("_target_"))
            task(cfg, report)
            status = "success"
        finally:
            path = report.write()
            for logger in report.loggers:
                logger.finalize(status)
    log.info("Wrote %s", path)
    return path


def run_in_order(cfg: DictConfig, report: Report, **tasks: Callable[..., None]) -> None:
    """``task=data``: run ``tasks`` one after another into the same report, in the order of
    the config. Each comes in built from its own conf/task file (through the defaults list),
    so its options are written once and overridden as ``task.<name>.<option>``."""
    for name, task in tasks.items():
        log.info("Task %s", name)
        task(cfg, report)
