"""One reader of a run directory: the same run read by task=compare, the sweep summary and
the leaderboard gives the same metrics, seed and overrides; a damaged file in one run is one
line naming it (``unreadable: <reason>``), and every reader goes on with the other runs."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from fmnist.cli import sweep_summary_main
from fmnist.results.leaderboard import find_entries, read_entry
from fmnist.results.rundir import (
    UnreadableRunError,
    read_predictions,
    read_run,
)
from fmnist.results.sweep import read_job
from fmnist.tasks.compare import contestant, contestants_of

METRICS = {"test/acc": 0.75, "val/acc_best": 0.8, "test/f1_macro": 0.7, "seed": 3,
           "parameters": 1234, "train_time_s": 5.0,
           "monitor": {"name": "val/acc", "mode": "max", "best": 0.8}}  # fmt: skip
OVERRIDES = ["model.filters=[8]", "seed=3"]


def write_run(run_dir: Path) -> Path:
    """A finished run as train.py leaves it: metrics.json, config.yaml, .hydra/, predictions."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(METRICS))
    OmegaConf.save(OmegaConf.create(OVERRIDES), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"seed": 3, "model": {"filters": [8]}}), run_dir / ".hydra" / "config.yaml"
    )
    OmegaConf.save(
        OmegaConf.create({"seed": 3, "model": {"filters": [8]}}), run_dir / "config.yaml"
    )
    labels = np.array([0, 1, 2, 3], dtype=np.int64)
    predicted = np.array([0, 1, 2, 0], dtype=np.int64)
    probabilities = np.eye(10, dtype=np.float32)[predicted]
    np.savez(
        run_dir / "predictions.npz", labels=labels, predicted=predicted, probabilities=probabilities
    )
    return run_dir


def test_compare_sweep_and_leaderboard_read_the_same_run_alike(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "0")
    assert read_run(run_dir).metrics == METRICS
    assert read_run(run_dir).overrides == OVERRIDES
    job, entry = read_job(run_dir), read_entry(run_dir)
    compared = contestant([run_dir], [])
    assert job.status == "completed" and entry is not None
    assert job.seed == entry.seed == compared.seeds[0] == METRICS["seed"]
    for name in ("test/acc", "val/acc_best", "test/f1_macro"):
        assert job.scores[name] == entry.scores[name] == METRICS[name]
    assert job.parameters == entry.parameters == METRICS["parameters"]
    assert job.train_time_s == entry.train_time_s == METRICS["train_time_s"]
    assert job.overrides == OVERRIDES
    assert entry.name == "train.py model.filters=[8]"  # without the seed
    assert compared.name == "0 (model.filters=[8] seed=3)"


def test_a_missing_metrics_file_is_unfinished_and_a_cut_one_unreadable(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "0")
    (run_dir / "metrics.json").unlink()  # killed before the end
    assert read_run(run_dir).metrics is None and read_entry(run_dir) is None
    assert read_job(run_dir).status == "unfinished"
    assert read_run(tmp_path).overrides is None
    (run_dir / "metrics.json").write_text('{"test/acc": 0.7')  # written atomically: damage
    with pytest.raises(UnreadableRunError, match=r"^unreadable: metrics.json is not JSON \("):
        read_run(run_dir)
    job = read_job(run_dir)
    assert job.status == "unreadable" and job.error.startswith("metrics.json is not JSON")


def test_the_sweep_summary_command_summarizes_a_sweep_directory(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "sweep" / "0")
    assert sweep_summary_main([str(tmp_path / "sweep")]) == 0
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "1 of 1 jobs completed" in summary and "model.filters=[8]" in summary
    assert "Sweep summary" in capsys.readouterr().out


def set_metric(name: str, value: object) -> callable:
    def damage(run_dir: Path) -> None:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics[name] = value
        (run_dir / "metrics.json").write_text(json.dumps(metrics))  # NaN as the bare word NaN

    return damage


def fifo(run_dir: Path) -> None:
    (run_dir / "metrics.json").unlink()
    os.mkfifo(run_dir / "metrics.json")  # nothing ever writes to it: a blocking read hangs


#: The damage of issue 30 and a few more, and the reason each reader gives for it.
DAMAGE = {
    "string": (set_metric("test/acc", "93.7%"), "metrics.json: test/acc is '93.7%', not a number"),
    "percent": (set_metric("test/acc", 93.7), "metrics.json: test/acc = 93.7 is outside [0, 1]"),
    "bool": (set_metric("test/acc", True), "metrics.json: test/acc is True, not a number"),
    "nan": (set_metric("test/acc", float("nan")), "metrics.json is not JSON (NaN is not a JSON"),
    "monitor": (set_metric("monitor", "val/acc"), "metrics.json: monitor 'val/acc' names no"),
    "seed": (set_metric("seed", 1.5), "metrics.json: seed is 1.5, not a whole number"),
    "list": (lambda d: (d / "metrics.json").write_text("[1, 2]"), "metrics.json holds a list"),
    "fifo": (fifo, "metrics.json is not a regular file"),
    "directory": (lambda d: (d / "metrics.json").unlink() or (d / "metrics.json").mkdir(),
                  "metrics.json is not a regular file"),
    "config": (lambda d: (d / "config.yaml").write_text("seed: [1, 2\n"),
               "config.yaml is not YAML (while parsing a flow sequence)"),
    "overrides": (lambda d: (d / ".hydra/overrides.yaml").write_text("a: 1\n"),
                  ".hydra/overrides.yaml holds a mapping, not a list"),
}  # fmt: skip


@pytest.mark.parametrize("kind", DAMAGE)
def test_every_reader_names_a_damaged_run_in_one_line_and_goes_on(tmp_path, kind, capsys):
    damage, reason = DAMAGE[kind]
    sweep = tmp_path / "sweep"
    write_run(sweep / "0")
    damage(write_run(sweep / "1"))
    with pytest.raises(UnreadableRunError) as raised:
        read_run(sweep / "1")
    assert str(raised.value).startswith(f"unreadable: {reason}")
    assert "\n" not in str(raised.value)

    assert sweep_summary_main([str(sweep)]) == 0  # the sweep summary
    rows = {r["job"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert rows["0"]["status"] == "completed" and float(rows["0"]["test/acc"]) == 0.75
    assert rows["1"]["status"] == "unreadable" and rows["1"]["error"].startswith(reason)
    assert f"- job 1 unreadable: {reason}" in (sweep / "summary.md").read_text()
    assert "job 1 unreadable: " in capsys.readouterr().out

    entries, skipped = find_entries([sweep])  # the leaderboard
    assert [e.path.name for e in entries] == ["0"] and entries[0].scores["test/acc"] == 0.75
    assert len(skipped) == 1 and skipped[0].endswith(str(raised.value))

    left_out: list[str] = []  # task=compare: the damaged job leaves the seed group
    (group,) = contestants_of(sweep, left_out)
    assert group.runs == [sweep / "0"] and group.accuracy == 0.75
    assert left_out == [f"{sweep / '1'}: {raised.value}"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:100]),  # cut short
        lambda path: np.savez(path, labels=np.zeros(4, np.int64)),  # keys missing
        lambda path: np.savez(path, labels=np.zeros(4), predicted=np.zeros(4), probabilities=[]),
        lambda path: path.write_text("not a zip"),
    ],
    ids=["truncated", "keyless", "shapes", "text"],
)
def test_compare_leaves_out_a_run_with_damaged_predictions(tmp_path: Path, damage) -> None:
    good, bad = write_run(tmp_path / "good"), write_run(tmp_path / "bad")
    damage(bad / "predictions.npz")
    with pytest.raises(UnreadableRunError, match=r"^unreadable: predictions.npz: [^\n]+$"):
        read_predictions(bad)
    left_out: list[str] = []
    assert contestants_of(bad, left_out) == [] and len(left_out) == 1
    assert left_out[0].startswith(f"{bad}: unreadable: predictions.npz: ")
    assert len(contestants_of(good, left_out)) == 1 and len(left_out) == 1
