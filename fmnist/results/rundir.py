"""A run's directory, read back once for every reader of results (sweep summaries and the
multirun callback, the leaderboard, ``task=compare``): strict about what a run holds,
forgiving about which runs there are. ``metrics.json`` is checked against the metric table
(``fmnist.metrics``: numbers, in range, fractions never percentages), the config and overrides
for their shape, ``predictions.npz`` for its arrays; a bad run raises
:class:`UnreadableRunError`, the one line ``unreadable: <reason>`` that every reader shows
before going on with the other runs. Only regular files are read (a FIFO would block)."""

from __future__ import annotations

import io
import json
import math
import types
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fmnist.data import NUM_CLASSES
from fmnist.errors import UnreadableRunError
from fmnist.files import CONFIG_FILE, METRICS_FILE, OVERRIDES_FILE, read_run_file
from fmnist.metrics import BOUNDS, MODES
from fmnist.training.predictions import PREDICTIONS_FILE, load_predictions

#: Where Hydra records a job's command-line overrides and config (every job of a sweep has one).
HYDRA_OVERRIDES = Path(".hydra") / OVERRIDES_FILE
HYDRA_CONFIG = Path(".hydra") / CONFIG_FILE
#: What a failed sweep job leaves instead of metrics.json (fmnist.results.sweep.SweepSummary).
ERROR_FILE = "error.txt"
#: float32 metrics land a few ulps outside their range (an F1 of 1.0000001).
SLACK = 1e-6
#: What the leaderboard names a baseline by.
BASELINE = ("name", "estimator", "features", "normalize")


@dataclass(frozen=True)
class Run:
    """What a run directory holds, checked. ``metrics`` None: no ``metrics.json`` (a run
    that is unfinished or failed); ``overrides`` None: not started by a Hydra command."""

    path: Path
    metrics: dict[str, Any] | None
    overrides: list[str] | None
    config: dict[str, Any] | None  # the run's resolved config, else Hydra's record of it
    error: str = ""  # error.txt of a failed sweep job

    @property
    def seed(self) -> int | None:
        """The seed metrics.json records, else the config's."""
        if self.metrics is not None and "seed" in self.metrics:
            return self.metrics["seed"]
        return (self.config or {}).get("seed")


def read_run(run_dir: str | Path) -> Run:
    """Read and check a run directory (see the module docstring)."""
    run_dir = Path(run_dir)
    overrides = _yaml(run_dir, OVERRIDES_FILE, HYDRA_OVERRIDES, list)
    config = _yaml(run_dir, CONFIG_FILE, HYDRA_CONFIG, dict)
    _check(CONFIG_FILE, "seed", (config or {}).get("seed"), int)
    metrics = _json(run_dir)
    error = b"" if metrics is not None else read_run_file(run_dir / ERROR_FILE) or b""
    overrides = None if overrides is None else [str(o) for o in overrides]
    return Run(run_dir, metrics, overrides, config, error.decode(errors="replace").strip())


def _json(run_dir: Path) -> dict[str, Any] | None:
    """``metrics.json`` when every value a reader uses has the type and range train.py
    writes; None when there is none."""
    data = read_run_file(run_dir / METRICS_FILE)
    if data is None:
        return None
    try:  # NaN and Infinity are not JSON, though json.loads takes them
        metrics = json.loads(data, parse_constant=_not_a_number)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UnreadableRunError(f"{METRICS_FILE} is not JSON ({_one_line(exc)})") from None
    if not isinstance(metrics, dict):
        raise UnreadableRunError(f"{METRICS_FILE} holds a {_kind(metrics)}, not an object")
    monitor, baseline = metrics.get("monitor"), metrics.get("baseline")
    checks = [(name, metrics.get(name), BOUNDS.get(name, (0, 1))) for name in MODES]
    if monitor is not None:
        if not isinstance(monitor, dict) or (name := str(monitor.get("name"))) not in MODES:
            raise UnreadableRunError(f"{METRICS_FILE}: monitor {monitor!r:.80} names no metric")
        if monitor.get("mode", MODES[name]) != MODES[name]:
            raise UnreadableRunError(f"{METRICS_FILE}: monitor {name}'s mode is {MODES[name]}")
        checks.append(("monitor.best", monitor.get("best"), BOUNDS.get(name, (0, 1))))
    if baseline is not None and not (
        isinstance(baseline, dict) and all(isinstance(baseline.get(k), str) for k in BASELINE)
    ):
        raise UnreadableRunError(f"{METRICS_FILE}: baseline lacks one of {BASELINE}")
    for name, value, bounds in checks:
        _check(METRICS_FILE, name, value, int | float, bounds)
    _check(METRICS_FILE, "train_time_s", metrics.get("train_time_s"), int | float, (0, math.inf))
    _check(METRICS_FILE, "seed", metrics.get("seed"), int)
    _check(METRICS_FILE, "parameters", metrics.get("parameters"), int, (0, math.inf))
    _check(METRICS_FILE, "train_images", (baseline or {}).get("train_images"), int, (0, math.inf))
    return metrics


def read_predictions(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The run's checked test predictions (``labels``, ``predicted``, ``probabilities``)."""
    data = read_run_file(Path(run_dir) / PREDICTIONS_FILE)
    if data is None:
        raise UnreadableRunError(
            f"no {PREDICTIONS_FILE} (trained before runs kept their test predictions, or not "
            "finished): train it again, or leave it out"
        )
    try:  # numpy and zipfile raise all of these on a damaged or foreign file
        arrays = load_predictions(io.BytesIO(data))  # type: ignore[arg-type]
    except (OSError, ValueError, EOFError, KeyError, MemoryError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as exc:  # fmt: skip
        raise UnreadableRunError(f"{PREDICTIONS_FILE}: {_one_line(exc)}") from None
    labels, predicted, probabilities = (arrays[k] for k in ("labels", "predicted", "probabilities"))
    n = len(labels) if labels.ndim == 1 else 0
    if not (n and labels.dtype.kind in "iu" and predicted.dtype.kind in "iu"
            and predicted.shape == labels.shape and probabilities.shape == (n, NUM_CLASSES)
            and probabilities.dtype.kind == "f"):  # fmt: skip
        raise UnreadableRunError(
            f"{PREDICTIONS_FILE}: labels {labels.shape}, predicted {predicted.shape} and "
            f"probabilities {probabilities.shape} are not n, n and (n, {NUM_CLASSES}) numbers"
        )
    in_range = ((labels >= 0) & (labels < NUM_CLASSES) & (predicted >= 0)
                & (predicted < NUM_CLASSES)).all()  # fmt: skip
    if not in_range or not np.isfinite(probabilities).all():
        raise UnreadableRunError(f"{PREDICTIONS_FILE}: a class outside 0-9, or a NaN probability")
    return arrays


def _yaml(run_dir: Path, own: str, hydra: Path, kind: type[list] | type[dict]) -> Any:
    """The run's own record ``own`` (written by train() once it holds the directory, so a
    refused command cannot change it), else Hydra's ``hydra`` (runs from before the record,
    sweep jobs that failed before claiming their directory): a ``kind`` of plain containers;
    None when neither exists."""
    for relative in (own, hydra):
        if (data := read_run_file(run_dir / relative)) is None:
            continue
        try:  # ${...} stays as written; JSON's round trip makes every key a string
            loaded = yaml.safe_load(data.decode())
            loaded = json.loads(json.dumps(loaded, default=str, skipkeys=True))
        except (yaml.YAMLError, ValueError, RecursionError) as exc:  # UnicodeDecodeError
            raise UnreadableRunError(f"{relative} is not YAML ({_one_line(exc)})") from None
        if not isinstance(loaded, kind):
            raise UnreadableRunError(f"{relative} holds a {_kind(loaded)}, not a {_kind(kind)}")
        return loaded
    return None


def _check(file: str, name: str, value: Any, kind: Any, bounds=(-math.inf, math.inf)) -> None:
    """None (not computed), or a ``kind`` of number, finite and within ``bounds``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind):
        raise UnreadableRunError(f"{file}: {name} is {value!r:.40}, not {_kind(kind)}")
    low, high = bounds
    if not low - SLACK <= value <= high + SLACK or value in (math.inf, -math.inf):
        hint = " (a percentage? they are stored as fractions)" if high == 1 < value <= 100 else ""
        raise UnreadableRunError(
            f"{file}: {name} = {value!r:.20} is outside [{low:g}, {high:g}]{hint}"
        )


def _not_a_number(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _kind(value: Any) -> str:
    """What a value, or a type, is in words."""
    key = value if isinstance(value, type | types.UnionType) else type(value)
    names = {dict: "mapping", list: "list", int: "a whole number", int | float: "a number"}
    return names.get(key, getattr(key, "__name__", str(key)))


def _one_line(exc: BaseException) -> str:
    """The first line of an error's message (YAML's run over several), at most 160 chars."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


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
