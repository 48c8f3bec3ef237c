"""One reader of a run directory: the same run read by task=compare, the sweep summary and
the leaderboard gives the same metrics, seed and overrides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from fmnist.cli import sweep_summary_main
from fmnist.results.leaderboard import read_entry
from fmnist.results.rundir import read_metrics, read_overrides
from fmnist.results.sweep import read_job
from fmnist.tasks.compare import contestant, run_name

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
    assert read_metrics(run_dir) == METRICS
    assert read_overrides(run_dir) == OVERRIDES
    job, entry = read_job(run_dir), read_entry(run_dir / "metrics.json")
    compared = contestant(run_name(run_dir), [run_dir])
    assert job.status == "completed" and entry is not None
    assert job.seed == entry.seed == compared.seeds[0] == METRICS["seed"]
    for name in ("test/acc", "val/acc_best", "test/f1_macro"):
        assert job.scores[name] == entry.scores[name] == METRICS[name]
    assert job.parameters == entry.parameters == METRICS["parameters"]
    assert job.train_time_s == entry.train_time_s == METRICS["train_time_s"]
    assert job.overrides == OVERRIDES
    assert entry.name == "train.py model.filters=[8]"  # without the seed
    assert compared.name == "0 (model.filters=[8] seed=3)"


def test_a_missing_or_cut_metrics_file_reads_as_unfinished(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "0")
    (run_dir / "metrics.json").write_text('{"test/acc": 0.7')  # cut short by a kill
    assert read_metrics(run_dir) is None
    assert read_entry(run_dir / "metrics.json") is None
    assert read_job(run_dir).status == "unfinished"
    assert read_overrides(tmp_path) is None


def test_the_sweep_summary_command_summarizes_a_sweep_directory(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "sweep" / "0")
    assert sweep_summary_main([str(tmp_path / "sweep")]) == 0
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "1 of 1 jobs completed" in summary and "model.filters=[8]" in summary
    assert "Sweep summary" in capsys.readouterr().out
