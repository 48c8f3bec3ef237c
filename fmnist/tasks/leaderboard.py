"""``analyze.py task=leaderboard``: the finished runs and baselines it is given, in one table.

Ranks the runs under the directories in ``runs`` (run, sweep and ``task=baselines``
directories) and the sweep ``task.sweep`` names, never all of ``logs/`` behind the user's
back; groups entries that differ only by seed (mean ± sample std), adds the published results
of conf/task/leaderboard.yaml, marked as not measured here, and sorts by test accuracy. A run
that cannot be read is left out with one line saying why. Writes ``leaderboard.md`` and
``leaderboard.csv`` and prints the table.
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


def named_sweep(log_dir: Path, sweep: str) -> Path:
    """A sweep directory, or the name of one under ``<log_dir>/train/multiruns``."""
    multiruns = log_dir / "train" / "multiruns"
    for path in (Path(sweep).expanduser(), multiruns / sweep):
        if path.is_dir():
            return path
    latest = sorted(p.name for p in multiruns.glob("*") if p.is_dir())[-3:]
    raise ConfigError(
        f"task.sweep={sweep!r} is neither a directory nor a sweep in {multiruns} (the latest: "
        f"{', '.join(latest) or 'none'}): name a sweep there, or pass its directory."
    )


def leaderboard_task(
    cfg: DictConfig, report: Report, *, published: list[dict[str, Any]], sweep: str | None = None
) -> None:
    """The ``leaderboard`` task (see the module docstring)."""
    roots = [Path(str(p)).expanduser() for p in cfg.get("runs") or []]
    if sweep is not None:
        roots.append(named_sweep(Path(str(cfg.paths.log_dir)), str(sweep)))
    if not roots:
        raise ConfigError(
            "task=leaderboard ranks the runs it is given: pass runs=[DIR,...] (run, sweep or "
            "task=baselines directories) or task.sweep=NAME (a sweep in logs/train/multiruns)."
        )
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise ConfigError(f"runs: {missing} are not directories: pass folders holding runs.")
    entries, skipped = find_entries(roots)
    for line in skipped:
        log.warning("Left out %s", line)
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
    if skipped:
        report.text("Left out, as unreadable:\n\n" + "\n".join(f"- {line}" for line in skipped))
    report.table(HEADERS, cells)
    markdown = "\n".join(markdown_table(HEADERS, cells)) + "\n"
    atomic_write_text(report.output_dir / "leaderboard.md", markdown)
    atomic_write_text(report.output_dir / "leaderboard.csv", csv_text(cells, HEADERS))
    shown = [row[:-1] for row in cells]  # without the source column
    print_table("Leaderboard (test accuracy)", HEADERS[:-1], shown, left={"model", "kind"})
