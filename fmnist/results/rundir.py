"""A finished run's directory, read back once for every reader (sweep summaries, the
leaderboard, ``task=compare``): its ``metrics.json`` and the command-line overrides that
started it, as the run itself recorded them once it held its directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fmnist.files import METRICS_FILE, OVERRIDES_FILE

#: Where Hydra records a job's command-line overrides (every job of a sweep has one).
HYDRA_OVERRIDES = Path(".hydra") / OVERRIDES_FILE


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``metrics.json``; None when it is missing, unreadable or not an object (an
    unfinished run, a failed job, a file cut short)."""
    try:
        metrics = json.loads((Path(run_dir) / METRICS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return metrics if isinstance(metrics, dict) else None


def read_overrides(run_dir: str | Path) -> list[str] | None:
    """The overrides that started the run: the run's own record (``train()`` writes it once it
    holds the directory, so a refused command cannot change it), else Hydra's (runs from
    before the record, sweep jobs that failed before claiming their directory); None when
    neither exists (a run not started by a Hydra command)."""
    for path in (Path(run_dir) / OVERRIDES_FILE, Path(run_dir) / HYDRA_OVERRIDES):
        if path.is_file():
            return [str(o) for o in OmegaConf.load(path)]
    return None


def override_key(override: str) -> str:
    """``+model.filters=[8]`` -> ``model.filters``."""
    return override.split("=", 1)[0].lstrip("+~")


def shown_path(path: str | Path) -> str:
    """A run directory as tables show it: relative to the working directory (the project's,
    for the commands in the README) when it lies below it, else its own name, so that no
    table carries the absolute paths of the machine that wrote it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name
