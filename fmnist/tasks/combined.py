"""Tasks made of tasks: ``task=data`` runs eda, then pca, into one report."""

from __future__ import annotations

import logging
from collections.abc import Callable

from omegaconf import DictConfig

from fmnist.results.report import Report

log = logging.getLogger(__name__)

#: A task with its options bound (see ``fmnist.tasks``).
Task = Callable[[DictConfig, Report], None]


def run_in_order(cfg: DictConfig, report: Report, **tasks: Task) -> None:
    """Run ``tasks`` one after another into the same report, in the order of the config.

    Each comes in built from its own conf/task file (through the defaults list), so its
    options are written once and overridden as ``task.<name>.<option>``.
    """
    for name, task in tasks.items():
        log.info("Task %s", name)
        task(cfg, report)
