"""One leaderboard of every finished run and baseline: read, grouped by seed, sorted.

Every training run and baseline leaves a ``metrics.json``; this module finds them under some
directories and groups those that differ only by seed: a run's identity is its resolved
``config.yaml`` without the seed and the entries that only say where things are; a baseline's
is its name, estimator, features, training images and preprocessing. A run whose files no run
writes is left out with a one-line reason.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmnist.files import METRICS_FILE
from fmnist.metrics import VAL_ACC_BEST
from fmnist.results.rundir import Run, UnreadableRunError, override_key, read_run, shown_path

PUBLISHED = "published, not measured here"
#: Top-level config entries that do not change what is trained (where, how it is logged).
NOT_IDENTITY = ("seed", "paths", "hydra", "ckpt_path", "skip_finished", "callbacks", "logger",
                "task_name")  # fmt: skip
#: Nested entries that only say where data and outputs are.
NOT_IDENTITY_NESTED = {"trainer": ("default_root_dir",),
                       "data": ("root", "download", "search_system")}  # fmt: skip


@dataclass
class Entry:
    """One finished run or baseline."""

    path: Path
    kind: str  # "trained" or "baseline"
    name: str
    key: str  # equal for entries that differ only by seed
    seed: int | None
    scores: dict[str, float | None]  # test/acc, val/acc_best, test/f1_macro
    parameters: int | None
    train_time_s: float | None


@dataclass
class Row:
    """A leaderboard line: one configuration over its seeds, or a published result."""

    name: str
    kind: str
    test_acc: float
    test_acc_std: float | None = None
    seeds: list[int | None] = field(default_factory=list)
    val_acc: float | None = None
    parameters: int | None = None
    train_time_s: float | None = None
    source: str = ""


def run_identity(run: Run) -> tuple[str, str]:
    """(name, key) of a training run: its command-line overrides without the seed, and its
    resolved config without the seed and locations."""
    if run.overrides is not None:
        overrides = [o for o in run.overrides if override_key(o) not in NOT_IDENTITY]
        name = "train.py " + (" ".join(overrides) if overrides else "(defaults)")
    else:  # not started by train.py's Hydra: what was overridden is unknown, not "defaults"
        name = f"train.py (overrides not recorded: {run.path.name})"
    if run.config is None:
        return name, str(run.path)
    config = {k: v for k, v in run.config.items() if k not in NOT_IDENTITY}
    for group, keys in NOT_IDENTITY_NESTED.items():
        if isinstance(config.get(group), dict):
            config[group] = {k: v for k, v in config[group].items() if k not in keys}
    return name, json.dumps(config, sort_keys=True, default=str)


def baseline_identity(baseline: dict[str, Any]) -> tuple[str, str]:
    """(name, key) of a baseline: the seed shows in its estimator as ``random_state``."""
    estimator = re.sub(r"random_state=\d+", "random_state=<seed>", baseline["estimator"])
    parts = (baseline["name"], estimator, baseline["features"], baseline["train_images"],
             baseline["normalize"])  # fmt: skip
    samples = baseline["train_images"]
    return f"baseline {baseline['name']} ({samples:,} train images)", json.dumps(parts)


def read_entry(run_dir: Path) -> Entry | None:
    """The entry of a run directory; None when it is not a finished, tested run. A
    ``UnreadableRunError`` says why a run cannot be read."""
    run = read_run(run_dir)
    metrics = run.metrics
    if metrics is None or metrics.get("test/acc") is None:
        return None
    if metrics.get("baseline") is not None:
        kind, (name, key) = "baseline", baseline_identity(metrics["baseline"])
    else:
        kind, (name, key) = "trained", run_identity(run)
    scores = {k: metrics.get(k) for k in ("test/acc", VAL_ACC_BEST, "test/f1_macro")}
    return Entry(run_dir, kind, name, key, run.seed, scores, metrics.get("parameters"),
                 metrics.get("train_time_s"))  # fmt: skip


def find_entries(roots: Iterable[str | Path]) -> tuple[list[Entry], list[str]]:
    """Every finished run and baseline under ``roots`` (each directory once), and one line
    for each run left out because it cannot be read."""
    seen: set[Path] = set()
    entries, skipped = [], []
    for root in roots:
        for metrics_file in sorted(Path(root).expanduser().rglob(METRICS_FILE)):
            real = metrics_file.parent.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                entry = read_entry(metrics_file.parent)
            except UnreadableRunError as exc:
                skipped.append(f"{metrics_file.parent}: {exc}")
                continue
            if entry is not None:
                entries.append(entry)
    return entries, skipped


def _mean(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None


def leaderboard(entries: list[Entry], published: Iterable[dict[str, Any]] = ()) -> list[Row]:
    """One row per configuration (mean and sample std over its seeds) and per published
    result, highest test accuracy first."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.key, []).append(entry)
    rows = []
    for members in groups.values():
        members.sort(key=lambda e: (e.seed is None, e.seed or 0))
        accuracies = [float(e.scores["test/acc"]) for e in members]
        rows.append(Row(
            name=members[0].name,
            kind=members[0].kind,
            test_acc=statistics.fmean(accuracies),
            test_acc_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            seeds=[e.seed for e in members],
            val_acc=_mean([e.scores[VAL_ACC_BEST] for e in members]),
            parameters=members[0].parameters,
            train_time_s=_mean([e.train_time_s for e in members]),
            source=", ".join(shown_path(e.path) for e in members),
        ))  # fmt: skip
    rows += [
        Row(str(r["name"]), PUBLISHED, float(r["test_acc"]), source=str(r["source"]))
        for r in published
    ]
    return sorted(rows, key=lambda r: -r.test_acc)


def row_cells(rank: int, row: Row) -> list[str]:
    """A row as table cells: percentages, mean ± std, counts, minutes."""
    accuracy = f"{100 * row.test_acc:.2f}"
    if row.test_acc_std is not None and not math.isnan(row.test_acc_std):
        accuracy += f" ± {100 * row.test_acc_std:.2f}"
    seeds = " ".join("-" if s is None else str(s) for s in row.seeds)
    return [
        str(rank),
        row.name,
        row.kind,
        accuracy,
        "" if row.val_acc is None else f"{100 * row.val_acc:.2f}",
        f"{len(row.seeds)} ({seeds})" if row.seeds else "",
        "" if row.parameters is None else f"{row.parameters:,}",
        "" if row.train_time_s is None else f"{row.train_time_s / 60:.1f}",
        row.source,
    ]


HEADERS = ["#", "model", "kind", "test acc %", "val acc %", "seeds", "parameters",
           "train min", "source"]  # fmt: skip
