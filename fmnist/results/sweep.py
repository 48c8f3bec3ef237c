"""Sweeps: a summary of every multirun, and re-running an unfinished sweep.

The :class:`SweepSummary` callback (``conf/hydra/default.yaml``) reads the job directories of
``train.py -m`` and writes ``summary.csv``, ``seed_groups.csv`` and ``summary.md`` into the
sweep directory. It reads the directories, not Hydra's results, and rewrites the summary after
every job: Hydra 1.3's BasicSweeper raises on a batch with a failed job before
``on_multirun_end``, and SLURM or joblib jobs end in other processes. A job's ``metrics.json``
is its record, ``error.txt`` a failure's; a job with damaged files is listed as unreadable,
with its reason.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from fmnist.files import atomic_write_text
from fmnist.metrics import MEAN_CORRUPTION_ACC, VAL_ACC_BEST, sort_key
from fmnist.results.rundir import (
    ERROR_FILE,
    HYDRA_OVERRIDES,
    UnreadableRunError,
    override_key,
    read_run,
)
from fmnist.tables import csv_text, markdown_table, rich_table

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"
#: Score columns, by their logged names, in the order they are shown (fractions in CSV,
#: percent in tables), with their table headers. Jobs are sorted by the monitored metric's
#: best value (the value train.py returns to sweepers), in its mode: highest accuracy or
#: lowest loss first.
SCORE_HEADERS = {
    VAL_ACC_BEST: "val acc %",
    "test/acc": "test acc %",
    "test/f1_macro": "test F1 macro %",
    "test/f1_weighted": "test F1 weighted %",
    "test/ece": "test ECE %",
    MEAN_CORRUPTION_ACC: "mean corruption acc %",
}
SCORES = tuple(SCORE_HEADERS)
#: Columns of the printed and Markdown tables only when a job computed them (ECE: runs since
#: calibration; mean corruption accuracy: runs with callbacks.robustness.enabled=true).
OPTIONAL_SCORES = ("test/ece", MEAN_CORRUPTION_ACC)
MONITOR_BEST = "monitor_best"
JOB_COLUMNS = ("job", "overrides", "seed", "monitor", "monitor_best", *SCORES, "parameters",
               "train_time_s", "status", "error")  # fmt: skip


@dataclass
class JobResult:
    """One job of a sweep, as read back from its directory."""

    job: str
    overrides: list[str]
    seed: int | None
    status: str  # "completed", "failed", "unfinished" (killed, or still running), UNREADABLE
    scores: dict[str, float] = field(default_factory=dict)
    monitor: str = ""
    monitor_mode: str = "max"
    monitor_best: float | None = None
    parameters: int | None = None
    train_time_s: float | None = None
    error: str = ""

    def varying(self, keys: set[str]) -> str:
        """The overrides whose keys are in ``keys``, without the seed: what names the job."""
        return " ".join(o for o in self.overrides if override_key(o) in keys - {"seed"})


@dataclass
class SeedGroup:
    """Jobs whose overrides differ only by ``seed``: mean and std of each score."""

    overrides: str
    jobs: list[JobResult]  # by seed
    mean: dict[str, float]
    std: dict[str, float]  # sample std (n - 1); NaN for a single seed

    @property
    def seeds(self) -> list[int | None]:
        return [job.seed for job in self.jobs]


def read_job(job_dir: Path) -> JobResult:
    """Read a job directory written by ``train()`` (and Hydra's ``.hydra/``, for jobs that
    failed before ``train()`` wrote its records)."""
    try:
        run = read_run(job_dir)
    except UnreadableRunError as exc:
        return JobResult(job_dir.name, [], None, UNREADABLE, error=exc.reason)
    overrides, metrics = run.overrides or [], run.metrics
    if metrics is None:
        status = "failed" if run.error else "unfinished"
        return JobResult(job_dir.name, overrides, run.seed, status, error=run.error)
    monitor = metrics.get("monitor") or {}
    return JobResult(
        job=job_dir.name,
        overrides=overrides,
        seed=run.seed,
        status="completed",
        scores={k: float(metrics[k]) for k in SCORES if metrics.get(k) is not None},
        monitor=str(monitor.get("name", "")),
        monitor_mode=str(monitor.get("mode", "max")),
        monitor_best=monitor.get("best"),
        parameters=metrics.get("parameters"),
        train_time_s=metrics.get("train_time_s"),
    )


def _job_order(path: Path) -> tuple[int, str]:
    name = path.name
    return (int(name), name) if name.isdigit() else (math.inf, name)  # type: ignore[return-value]


def read_sweep(sweep_dir: str | Path) -> list[JobResult]:
    """Every job of a sweep directory, best monitored value first (in the metric's mode),
    then jobs without one (failed, unfinished) in job order."""
    job_dirs = sorted(
        (p.parent.parent for p in Path(sweep_dir).glob(f"*/{HYDRA_OVERRIDES}")),
        key=_job_order,
    )
    jobs = [read_job(d) for d in job_dirs]
    # Stable sort: ties and failed/unfinished jobs keep their job order.
    return sorted(jobs, key=lambda j: sort_key(j.monitor_best, j.monitor_mode))


def varying_keys(jobs: Sequence[JobResult]) -> set[str]:
    """Override keys whose value differs between jobs (or is missing from some); every key
    when there is only one job. Unreadable jobs, whose overrides are unknown, do not count."""
    per_job = [{override_key(o): o for o in j.overrides} for j in jobs if j.status != UNREADABLE]
    keys: set[str] = set().union(*per_job)
    if len(per_job) <= 1:
        return keys
    return {k for k in keys if len({overrides.get(k) for overrides in per_job}) > 1}


def seed_groups(jobs: Sequence[JobResult]) -> list[SeedGroup]:
    """Group the completed jobs that differ only by seed; best mean monitored value first."""
    keys = varying_keys(jobs)
    grouped: dict[tuple[str, ...], list[JobResult]] = {}
    for job in jobs:
        if job.status == "completed":
            without_seed = tuple(o for o in job.overrides if override_key(o) != "seed")
            grouped.setdefault(without_seed, []).append(job)
    groups = []
    for members in grouped.values():
        members.sort(key=lambda j: (j.seed is None, j.seed or 0))
        mean, std = {}, {}
        for score in (MONITOR_BEST, *SCORES):
            values = [_score(j, score) for j in members if _score(j, score) is not None]
            if values:
                mean[score] = statistics.fmean(values)
                std[score] = statistics.stdev(values) if len(values) > 1 else math.nan
        groups.append(SeedGroup(members[0].varying(keys), members, mean, std))
    return sorted(groups, key=lambda g: sort_key(g.mean.get(MONITOR_BEST), g.jobs[0].monitor_mode))


def _score(job: JobResult, name: str) -> float | None:
    return job.monitor_best if name == MONITOR_BEST else job.scores.get(name)


def _percent(value: float | None, mode: str = "max") -> str:
    """Accuracies in percent, losses (``mode`` min) as they are."""
    if value is None or math.isnan(value):
        return ""
    return f"{value:.4f}" if mode == "min" else f"{100 * value:.2f}"


def _mean_std(group: SeedGroup, score: str) -> str:
    if score not in group.mean:
        return ""
    std = group.std[score]
    return _percent(group.mean[score]) + ("" if math.isnan(std) else f" ± {100 * std:.2f}")


def shown_scores(jobs: Sequence[JobResult]) -> list[str]:
    """The score columns of the tables: the optional ones only when some job has them."""
    return [s for s in SCORES if s not in OPTIONAL_SCORES or any(s in j.scores for j in jobs)]


def _job_cells(job: JobResult, keys: set[str], scores: Sequence[str]) -> list[str]:
    return [
        job.job,
        job.varying(keys),
        "" if job.seed is None else str(job.seed),
        f"{job.monitor} {_percent(job.monitor_best, job.monitor_mode)}".strip(),
        *(_percent(job.scores.get(s)) for s in scores),
        "" if job.parameters is None else f"{job.parameters:,}",
        "" if job.train_time_s is None else f"{job.train_time_s:.1f}",
        job.status,
    ]


def _job_headers(scores: Sequence[str]) -> list[str]:
    return ["job", "overrides", "seed", "monitored best", *(SCORE_HEADERS[s] for s in scores),
            "parameters", "train s", "status"]  # fmt: skip


def write_summary(sweep_dir: str | Path) -> tuple[list[JobResult], list[SeedGroup]]:
    """Write ``summary.csv``, ``seed_groups.csv`` and ``summary.md`` into ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    jobs = read_sweep(sweep_dir)
    groups = seed_groups(jobs)
    keys = varying_keys(jobs)
    job_rows = [{**asdict(j), **j.scores, "overrides": j.varying(keys)} for j in jobs]
    job_cells = [[row.get(column) for column in JOB_COLUMNS] for row in job_rows]
    atomic_write_text(sweep_dir / "summary.csv", csv_text(job_cells, JOB_COLUMNS))
    stats = [(s, m) for s in SCORES for m in ("mean", "std")]
    group_rows = [[g.overrides, len(g.seeds), " ".join(map(str, g.seeds)),
                   *(getattr(g, m).get(s) for s, m in stats)] for g in groups]  # fmt: skip
    group_columns = ["overrides", "n", "seeds", *(f"{s}_{m}" for s, m in stats)]
    atomic_write_text(sweep_dir / "seed_groups.csv", csv_text(group_rows, group_columns))
    atomic_write_text(sweep_dir / "summary.md", _summary_markdown(sweep_dir, jobs, groups, keys))
    return jobs, groups


def _summary_markdown(
    sweep_dir: Path, jobs: Sequence[JobResult], groups: Sequence[SeedGroup], keys: set[str]
) -> str:
    done = sum(j.status == "completed" for j in jobs)
    scores = shown_scores(jobs)
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        f"{done} of {len(jobs)} jobs completed. Sorted by the best value of the monitored "
        "metric (the value train.py returns to sweepers), best first. Scores in percent.",
        "",
        *markdown_table(_job_headers(scores), [_job_cells(j, keys, scores) for j in jobs]),
    ]
    if any(len(g.seeds) > 1 for g in groups):
        rows = [
            [g.overrides, str(len(g.seeds)), " ".join(map(str, g.seeds))]
            + [_mean_std(g, s) for s in scores]
            for g in groups
        ]
        headers = ["overrides", "n", "seeds", *(SCORE_HEADERS[s] for s in scores)]
        lines += ["", "## Seed groups", "",
                  "Jobs differing only by seed: mean ± sample standard deviation (n - 1).", "",
                  *markdown_table(headers, rows)]  # fmt: skip
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- job {j.job} (`{j.varying(keys)}`, seed {j.seed}): {j.error}" for j in failed]
    unreadable = [f"- job {j.job} unreadable: {j.error}" for j in jobs if j.status == UNREADABLE]
    if unreadable:
        lines += ["", "## Unreadable jobs", "", *unreadable]
    return "\n".join(lines) + "\n"


def print_summary(jobs: Sequence[JobResult], groups: Sequence[SeedGroup], title: str) -> None:
    """The sweep as rich tables: jobs, seed groups (when repeated), failures."""
    console = Console()
    keys = varying_keys(jobs)
    scores = [s for s in shown_scores(jobs) if s != "test/f1_weighted"]  # the files have it
    rows = [_job_cells(job, keys, scores) for job in jobs]
    styles = ["red" if job.status in ("failed", UNREADABLE) else None for job in jobs]
    console.print(rich_table(title, _job_headers(scores), rows, {"job", "overrides"}, styles))
    if any(len(g.seeds) > 1 for g in groups):
        headers = ["overrides", "n", *(SCORE_HEADERS[s] for s in scores)]
        rows = [[g.overrides, len(g.seeds), *(_mean_std(g, s) for s in scores)] for g in groups]
        title = "Seed groups: mean ± std over seeds"
        console.print(rich_table(title, headers, rows, left={"overrides"}))
    for job in jobs:
        if job.status in ("failed", UNREADABLE):
            console.print(f"[red]job {job.job} {job.status}[/red]: {escape(job.error)}")


class SweepSummary(Callback):
    """Hydra callback: summary files after every job, printed table at the end of a sweep."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        self._sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        # BasicSweeper raises after a batch with a failed job, before on_multirun_end: the
        # summary is then printed when the program exits (after Hydra's error message).
        atexit.register(self._finish_at_exit)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not self.enabled or config.hydra.mode != RunMode.MULTIRUN:
            return
        job_dir = Path(config.hydra.runtime.output_dir)
        error_path = job_dir / ERROR_FILE
        if job_return.status == JobStatus.FAILED:
            # The exception itself; the public ``return_value`` re-raises it.
            error = job_return._return_value
            atomic_write_text(error_path, f"{type(error).__name__}: {error}\n")
        else:
            error_path.unlink(missing_ok=True)
        write_summary(Path(str(config.hydra.sweep.dir)).absolute())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.enabled:
            atexit.unregister(self._finish_at_exit)
            self._finish()

    def _finish_at_exit(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # streams closed (e.g. test runner)
            self._finish()

    def _finish(self) -> None:
        if self._sweep_dir is None or not self._sweep_dir.is_dir():
            return
        jobs, groups = write_summary(self._sweep_dir)
        if jobs:
            print_summary(jobs, groups, title=f"Sweep summary ({self._sweep_dir})")
            log.info("Sweep summary: %s", self._sweep_dir / "summary.md")
