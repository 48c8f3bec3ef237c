"""``analyze.py task=leaderboard``: every finished run and baseline in one table.

Searches ``paths.log_dir`` (``logs/``: training runs, sweeps, ``task=baselines`` runs) and
the directories in ``runs``, groups entries that differ only by seed (mean ± sample std), adds
the published results of conf/task/leaderboard.yaml, marked as not measured here, and sorts by
test accuracy. Writes ``leaderboard.md`` and ``leaderboard.csv`` and prints the table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fmnist.errors import ConfigError
from fmnist.files import atomic_write_text
from fmnist.results.leaderboard import HEADERS, find_entries, leaderboard, row_cells
from fmnist.results.report import Report
from fmnist.tables import csv_text, markdown_table, print_table

log = logging.getLogger(__name__)


def leaderboard_task(cfg: DictConfig, report: Report, *, published: list[dict[str, Any]]) -> None:
    """The ``leaderboard`` task (see the module docstring)."""
    roots = [Path(str(cfg.paths.log_dir)), *(Path(str(p)) for p in cfg.get("runs") or [])]
    missing = [str(r) for r in roots[1:] if not r.is_dir()]
    if missing:
        raise ConfigError(f"runs: {missing} are not directories: pass folders holding runs.")
    entries = find_entries(r for r in roots if r.is_dir())
    rows = leaderboard(entries, published)
    cells = [row_cells(rank, row) for rank, row in enumerate(rows, 1)]
    report.heading("Leaderboard")
    report.text(
        f"{len(entries)} finished runs and baselines found under "
        f"{', '.join(f'`{r}`' for r in roots)}; runs differing only by seed are one row "
        "(mean ± sample std of test accuracy, mean validation accuracy and training time). "
        "Parameters of a baseline: the numbers its fitted model stores. Training time: the "
        "fit alone (a network's includes validation each epoch). Published rows are "
        "quoted, not measured here."
    )
    report.table(HEADERS, cells)
    markdown = "\n".join(markdown_table(HEADERS, cells)) + "\n"
    atomic_write_text(report.output_dir / "leaderboard.md", markdown)
    atomic_write_text(report.output_dir / "leaderboard.csv", csv_text(cells, HEADERS))
    shown = [row[:-1] for row in cells]  # without the source column
    print_table("Leaderboard (test accuracy)", HEADERS[:-1], shown, left={"model", "kind"})
