"""A refused command changes nothing: a second ``train.py`` in the directory of a running or a
finished run stops with one line and leaves every file of that run byte-identical (Hydra's
``.hydra/`` and the log included), and the readers of a run (leaderboard, compare, sweep
summaries) name it by its own settings. Also: config values Lightning would refuse, and
checkpoint paths that are directories, are one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES

from fmnist.checkpoint import read_checkpoint
from fmnist.errors import CheckpointError, ConfigError
from fmnist.results.leaderboard import find_entries
from fmnist.results.rundir import read_run
from fmnist.results.sweep import read_job
from fmnist.tasks.compare import run_name
from fmnist.training.run import train

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["model.filters=[8]", "trainer.max_epochs=1", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null"]  # fmt: skip
FIRST = ["seed=0", "optimizer.lr=0.003"]
REFUSED = ["seed=7", "optimizer.lr=0.5"]
#: Holds a run directory's lock as a running train.py does, until its stdin closes.
HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
sys.stdin.read()
"""


def train_cli(data_dir: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", *TINY_OVERRIDES, *QUICK, f"data.root={data_dir}"]
    return subprocess.run(
        [*command, f"hydra.run.dir={run_dir}", *overrides],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory and its bytes."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(fake_data_dir: Path, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "first"
    result = train_cli(fake_data_dir, run_dir, *FIRST)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def assert_named_by_its_own_settings(run_dir: Path) -> None:
    overrides = read_run(run_dir).overrides
    assert overrides is not None and {"seed=0", "optimizer.lr=0.003"} <= set(overrides)
    assert not {"seed=7", "optimizer.lr=0.5"} & set(overrides)
    name = run_name(read_run(run_dir))
    assert "optimizer.lr=0.003" in name and "0.5" not in name
    job = read_job(run_dir)
    assert job.seed == 0 and "optimizer.lr=0.003" in job.overrides


def test_a_refused_run_leaves_a_finished_run_byte_identical(fake_data_dir, finished) -> None:
    assert (finished / ".hydra" / "overrides.yaml").is_file() and (finished / "train.log").is_file()
    before = snapshot(finished)
    result = train_cli(fake_data_dir, finished, *REFUSED)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("OutputDirError: ")
    assert "finished run" in lines[0]
    assert snapshot(finished) == before
    assert_named_by_its_own_settings(finished)
    (entry,), _ = find_entries([finished])  # the leaderboard's reader
    assert "optimizer.lr=0.003" in entry.name and "0.5" not in entry.name


def test_a_refused_run_leaves_a_running_run_byte_identical(fake_data_dir, finished, tmp_path):
    running = tmp_path / "running"
    for name, data in snapshot(finished).items():  # a run's files, without its result yet
        if name != "metrics.json":
            (running / name).parent.mkdir(parents=True, exist_ok=True)
            (running / name).write_bytes(data)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(running / ".lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(running)
        result = train_cli(fake_data_dir, running, *REFUSED)
        after = snapshot(running)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("RunDirBusyError: ")
    assert f"PID {holder.pid}" in lines[0]
    assert after == before
    assert_named_by_its_own_settings(running)


def test_the_run_writes_its_own_record_and_readers_trust_it(finished, tmp_path) -> None:
    moved = tmp_path / "moved"
    moved.mkdir()
    for name, data in snapshot(finished).items():
        (moved / name).parent.mkdir(parents=True, exist_ok=True)
        (moved / name).write_bytes(data)
    # Whatever rewrites Hydra's copy (another command pointed at the directory), the run's
    # own record names it.
    (moved / ".hydra" / "overrides.yaml").write_text("- seed=7\n- optimizer.lr=0.5\n")
    assert_named_by_its_own_settings(moved)
    (entry,), _ = find_entries([moved])
    assert "optimizer.lr=0.003" in entry.name


def test_a_resume_of_the_finished_run_is_still_allowed(fake_data_dir, finished, tmp_path) -> None:
    resumed = tmp_path / "resumed"
    for name, data in snapshot(finished).items():
        (resumed / name).parent.mkdir(parents=True, exist_ok=True)
        (resumed / name).write_bytes(data)
    result = train_cli(fake_data_dir, resumed, *FIRST, "ckpt_path=last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_named_by_its_own_settings(resumed)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=-3", "`max_epochs` must be a non-negative integer or -1"),
        ("trainer.precision=17", "Precision 17 is invalid"),
    ],
)
def test_a_trainer_setting_lightning_refuses_is_one_config_error(
    tiny_train_cfg, override, message, tmp_path
) -> None:
    cfg = tiny_train_cfg(override)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    text = str(error.value)
    assert message in text and "Fix the trainer.* overrides." in text and "\n" not in text
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()  # refused before fitting


def test_a_checkpoint_path_that_is_a_directory_says_so(tmp_path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is a directory, not a checkpoint file.*last\.ckpt"):
        read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        read_checkpoint(tmp_path / "checkpoints" / "..")
