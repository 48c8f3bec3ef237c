"""A finished run's directory, read back once for every reader (sweep summaries, the
leaderboard, ``task=compare``): its ``metrics.json`` and the command-line overrides Hydra
recorded in ``.hydra/overrides.yaml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fmnist.files import METRICS_FILE

#: Where Hydra records a run's command-line overrides.
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``metrics.json``; None when it is missing, unreadable or not an object (an
    unfinished run, a failed job, a file cut short)."""
    try:
        metrics = json.loads((Path(run_dir) / METRICS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return metrics if isinstance(metrics, dict) else None


def read_overrides(run_dir: str | Path) -> list[str] | None:
    """The run's command-line overrides as Hydra recorded them; None when it recorded none
    (a run not started by a Hydra command)."""
    path = Path(run_dir) / OVERRIDES_FILE
    if not path.exists():
        return None
    return [str(o) for o in OmegaConf.load(path)]


def override_key(override: str) -> str:
    """``+model.filters=[8]`` -> ``model.filters``."""
    return override.split("=", 1)[0].lstrip("+~")
