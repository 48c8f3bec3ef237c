"""One run directory, one run: a second process is stopped, a finished run is not
overwritten, an interrupted one resumes (SLURM's requeue too) keeping what its state depends
on, and another run's checkpoint starts a fine-tune."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from fmnist.errors import ConfigError, OutputDirError, RunDirBusyError
from fmnist.training.run import train

ROOT = Path(__file__).resolve().parents[1]

QUICK = ["model.filters=[8]", "trainer.max_epochs=1", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null"]  # fmt: skip

#: Another process holding the run directory's lock, as a running train.py does.
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(300)
"""


def test_a_second_process_in_a_run_directory_stops_naming_the_first(tiny_train_cfg, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirError, match=rf"{run} is in use by .*PID {holder.pid}\)"):
            train(tiny_train_cfg(*QUICK, output_dir=run))
        assert not (run / "config.yaml").exists()  # stopped before writing anything
    finally:
        holder.kill()
        holder.wait()
    train(tiny_train_cfg(*QUICK, output_dir=run))  # a killed holder's lock is released
    assert (run / "metrics.json").is_file()
    assert (run / ".lock").read_text().strip() != str(holder.pid)  # this process's PID now


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, fake_data_dir) -> Path:
    """A finished one-epoch run (metrics.json written)."""
    from conftest import TINY_OVERRIDES, compose_config

    run = tmp_path_factory.mktemp("finished") / "run"
    train(compose_config("train", [*TINY_OVERRIDES, *QUICK], run, fake_data_dir))
    return run


def outputs(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (run / "metrics.json", run / "config.yaml",
                                             run / "checkpoints" / "last.ckpt")}  # fmt: skip


def test_a_new_run_in_a_finished_run_directory_is_refused(tiny_train_cfg, finished_run) -> None:
    before = outputs(finished_run)
    with pytest.raises(
        OutputDirError, match=r"holds a finished run .*new directory.*ckpt_path=last"
    ):
        train(tiny_train_cfg(*QUICK, "seed=1", output_dir=finished_run))
    assert outputs(finished_run) == before  # nothing overwritten


@pytest.mark.parametrize(
    ("changes", "listed"),
    [
        (
            ["optimizer=sgd"],
            r"optimizer._target_: torch.optim.AdamW -> torch.optim.SGD; .*"
            r"optimizer.momentum: \(unset\) -> 0.9",
        ),  # fmt: skip
        (["trainer.max_epochs=3"], r"trainer.max_epochs: 1 -> 3\."),
        (
            ["seed=1", "data.val_size=50", "scheduler=cosine"],
            r"seed: 0 -> 1; .*scheduler._target_: .*OneCycleLR -> .*CosineAnnealingLR; .*"
            r"data.val_size: 40 -> 50",
        ),  # fmt: skip
    ],
)
def test_a_resume_with_changes_it_cannot_honour_lists_them(
    tiny_train_cfg, finished_run, changes, listed
) -> None:
    before = outputs(finished_run)
    with pytest.raises(ConfigError, match=rf"Cannot resume the run in {finished_run}: {listed}"):
        train(tiny_train_cfg(*QUICK, *changes, "ckpt_path=last", output_dir=finished_run))
    assert outputs(finished_run) == before


def test_a_resume_with_harmless_changes_goes_ahead(tiny_train_cfg, finished_run) -> None:
    stored = json.loads((finished_run / "metrics.json").read_text())
    harmless = ["callbacks.learning_curves=null", "trainer.log_every_n_steps=5", "test=true"]
    metrics = train(tiny_train_cfg(*QUICK, *harmless, "ckpt_path=last", output_dir=finished_run))
    assert metrics["test/acc"] == stored["test/acc"]  # the same run, tested again


#: Stands in for SLURM's scontrol: records its arguments, then kills the job (its parent) as
#: ``scontrol requeue`` does before SLURM starts it again.
FAKE_SCONTROL = """#!/bin/sh
echo "$@" >> "$0.calls"
kill -TERM $PPID
"""
#: What SLURM sets in a job's environment, as much as Lightning reads (SLURMEnvironment).
SLURM_JOB = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242",
             "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
             "SLURM_NODELIST": "localhost"}  # fmt: skip
#: Dropout and a one-cycle schedule over two epochs: everything that must resume exactly.
TWO_EPOCHS = [*QUICK, "trainer.max_epochs=2", "model.dropout=0.3", "model.hidden=16"]


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGUSR1"])
def test_an_interrupted_run_given_its_directory_again_resumes_by_itself(
    tiny_train_cfg, tmp_path, monkeypatch, caplog, signal_name
) -> None:
    """SIGTERM: a run stopped by hand or by a scheduler. SIGUSR1 under SLURM: Lightning's
    auto-requeue saves, requeues the job (scontrol requeue) and SLURM stops it; the requeued
    job runs the same command, which resumes (see docs/sweeps-and-slurm.md)."""
    run = tmp_path / "run"
    if signal_name == "SIGUSR1":
        scontrol = tmp_path / "bin" / "scontrol"
        scontrol.parent.mkdir()
        scontrol.write_text(FAKE_SCONTROL)
        scontrol.chmod(0o755)
        monkeypatch.setenv("PATH", f"{scontrol.parent}:{os.environ['PATH']}")
        for name, value in SLURM_JOB.items():
            monkeypatch.setenv(name, value)
    kill = ["+callbacks.kill._target_=fault_injection.KillAt", "+callbacks.kill.epoch=1",
            "+callbacks.kill.batch=4", f"+callbacks.kill.signal_name={signal_name}"]  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        train(tiny_train_cfg(*TWO_EPOCHS, *kill, output_dir=run))
    assert stopped.value.code == 143  # a scheduler sees a killed job, not a success
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0
    if signal_name == "SIGUSR1":
        assert (tmp_path / "bin" / "scontrol.calls").read_text() == "requeue 4242\n"
        assert (run / "hpc_ckpt_1.ckpt").is_file()  # Lightning's mid-epoch save

    caplog.set_level(logging.INFO, logger="fmnist")
    resumed = train(tiny_train_cfg(*TWO_EPOCHS, output_dir=run))  # no ckpt_path
    whole = train(tiny_train_cfg(*TWO_EPOCHS, output_dir=tmp_path / "whole"))
    assert f"Resuming the run in {run} from {last}" in caplog.messages
    assert not (run / "hpc_ckpt_1.ckpt").exists()  # mid-epoch: not exact; epoch 0's end is
    assert resumed["epochs"] == whole["epochs"] == 2
    assert {k: v for k, v in resumed.items() if k.startswith("test/")} == {
        k: v for k, v in whole.items() if k.startswith("test/")
    }
    assert resumed["confusion_matrix"] == whole["confusion_matrix"]


def test_an_interrupted_run_with_other_settings_is_not_resumed(tiny_train_cfg, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(SystemExit):
        train(tiny_train_cfg(*TWO_EPOCHS, "+callbacks.kill._target_=fault_injection.KillAt",
                             "+callbacks.kill.epoch=1", "+callbacks.kill.signal_name=SIGTERM",
                             output_dir=run))  # fmt: skip
    with pytest.raises(ConfigError, match=rf"Cannot resume the run in {run}: seed: 0 -> 1\."):
        train(tiny_train_cfg(*TWO_EPOCHS, "seed=1", output_dir=run))


def test_train_a_finished_run_longer_is_a_fine_tune_from_its_weights(
    tiny_train_cfg, finished_run, tmp_path, caplog
) -> None:
    """A one-cycle schedule cannot be stretched (the resume died with "Tried to step 6
    times"): a new directory starts from the weights with a schedule of its own length."""
    last = finished_run / "checkpoints" / "last.ckpt"
    caplog.set_level(logging.INFO, logger="fmnist")
    longer = ["trainer.max_epochs=2", f"ckpt_path={last}", "optimizer.lr=1e-12"]
    metrics = train(tiny_train_cfg(*QUICK, *longer, output_dir=tmp_path / "longer"))
    assert any(m.startswith(f"Fine-tuning from the weights of {last}") for m in caplog.messages)
    state = torch.load(tmp_path / "longer" / "checkpoints" / "last.ckpt", weights_only=True)
    assert metrics["epochs"] == 2 and state["global_step"] == 2 * 9  # a fresh epoch count
    start = torch.load(last, weights_only=True)["state_dict"]
    learned = [k for k in start if k.endswith(("weight", "bias"))]  # not BatchNorm's statistics
    # lr 1e-12: the weights are still the finished run's, not a new initialization.
    assert learned and all(torch.allclose(state["state_dict"][k], start[k]) for k in learned)


def test_callbacks_none_writes_no_checkpoint(tiny_train_cfg, tmp_path) -> None:
    run = tmp_path / "run"
    cfg = tiny_train_cfg("trainer.max_epochs=1", "logger=none", output_dir=run)
    with open_dict(cfg):
        cfg.callbacks = {}  # what callbacks=none composes (tiny_train_cfg sets callbacks.*)
    metrics = train(cfg)
    assert metrics["best_checkpoint"] == "" and sorted(run.rglob("*.ckpt")) == []


def test_an_unwritable_run_directory_is_one_line(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "train.py", "hydra.run.dir=/proc/fmnist-run"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "OutputDirError: Cannot write the run directory /proc/fmnist-run (FileNotFoundError: "
        "No such file or directory). Choose a writable location (e.g. hydra.run.dir=... or "
        "paths.log_dir=... for runs, output=... for prediction files), or fix its permissions."
    ]


def test_a_second_analysis_in_one_directory_is_refused(tmp_path, fake_data_dir) -> None:
    from conftest import compose_config

    from fmnist.tasks import run_analysis

    out = tmp_path / "analysis"
    out.mkdir()
    (out / "report.md").write_text("the first analysis\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = compose_config("analyze", ["task=pca"], out, fake_data_dir)
        with pytest.raises(RunDirBusyError, match=rf"{out} is in use by .*PID {holder.pid}\)"):
            run_analysis(cfg)
    finally:
        holder.kill()
        holder.wait()
    assert (out / "report.md").read_text() == "the first analysis\n"


@pytest.mark.parametrize(
    ("damaged", "content"),
    [(None, None), ("metrics.json", "fifo"), ("metrics.json", "{not json"),
     ("config.yaml", "fifo"), ("config.yaml", "a: [")],
)  # fmt: skip
def test_a_rerun_sweep_reuses_a_finished_job_and_trains_a_damaged_one_again(
    tmp_path: Path, monkeypatch, damaged, content
) -> None:
    """A re-run sweep reads a job's metrics.json and config.yaml through the one run-file
    reader: a finished job is reused; a FIFO (which would block) or a file that is not JSON or
    YAML is said in one warning and the job trains again, never a hang or a traceback."""
    import os

    from fmnist.training import rundir

    monkeypatch.setattr(rundir, "in_multirun", lambda: True)
    cfg = OmegaConf.create(
        {"skip_finished": True, "seed": 0, "paths": {"output_dir": str(tmp_path)}}
    )
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    (tmp_path / "metrics.json").write_text('{"test/acc": 0.9}')
    if damaged is not None:
        (tmp_path / damaged).unlink()
        if content == "fifo":
            os.mkfifo(tmp_path / damaged)
        else:
            (tmp_path / damaged).write_text(content)
    expected = {"test/acc": 0.9} if damaged is None else None
    assert rundir.finished_job_metrics(cfg) == expected
