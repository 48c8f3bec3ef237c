"""Faults: a killed run resumes to the same result, NaN losses stop cleanly, bad checkpoints."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import TINY_OVERRIDES

from fmnist.errors import CheckpointError, TrainingDivergedError
from fmnist.training.run import train

ROOT = Path(__file__).resolve().parents[1]
# Dropout, crop/flip augmentation and a one-cycle schedule: everything that must resume exactly.
RUN = [
    "model.filters=[8,16]",
    "model.hidden=16",
    "model.dropout=0.3",
    "trainer.max_epochs=2",
    "logger=none",
    "callbacks.lr_monitor=null",
]


def run_train_cli(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_uninterrupted_result(
    tiny_train_cfg, fake_data_dir: Path, tmp_path: Path, signal_name: str
) -> None:
    killed = tmp_path / "killed"
    result = run_train_cli(
        [
            *TINY_OVERRIDES,
            *RUN,
            f"data.root={fake_data_dir}",
            f"hydra.run.dir={killed}",
            "+callbacks.kill._target_=fault_injection.KillAt",
            "+callbacks.kill.epoch=1",
            "+callbacks.kill.batch=4",  # mid-epoch: epoch 0 is in last.ckpt, epoch 1 half done
            f"+callbacks.kill.signal_name={signal_name}",
        ]
    )
    assert result.returncode != 0, result.stderr[-2000:]
    if signal_name == "SIGTERM":  # Lightning alone would exit 0 here
        assert result.returncode == 143
        assert f"hydra.run.dir={killed} ckpt_path=last" in (killed / "train.log").read_text()
    assert not (killed / "metrics.json").exists()
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    resumed = train(tiny_train_cfg(*RUN, "ckpt_path=last", output_dir=killed))
    whole = train(tiny_train_cfg(*RUN, output_dir=tmp_path / "whole"))

    assert resumed["epochs"] == whole["epochs"] == 2
    assert scores_of(resumed) == scores_of(whole)  # bit-for-bit: same data, dropout, schedule
    assert resumed["val/acc_best"] == whole["val/acc_best"]
    assert resumed["confusion_matrix"] == whole["confusion_matrix"]
    final_resumed, final_whole = weights(killed), weights(tmp_path / "whole")
    assert all(torch.equal(final_resumed[k], final_whole[k]) for k in final_whole)
    saved = json.loads((killed / "metrics.json").read_text())
    assert scores_of(saved) == scores_of(whole)


def scores_of(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith("test/")}


def test_resume_last_without_the_run_directory_names_the_fix(tiny_train_cfg) -> None:
    with pytest.raises(CheckpointError, match=r"hydra.run.dir=.*ckpt_path=last"):
        train(tiny_train_cfg("ckpt_path=last"))


def test_resume_with_a_different_architecture_names_the_layer(tiny_train_cfg, tmp_path) -> None:
    train(tiny_train_cfg("model.filters=[8]", "trainer.max_epochs=1", output_dir=tmp_path / "a"))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match=r"features\.0\.0\.weight.*model overrides"):
        train(tiny_train_cfg("model.filters=[4]", f"ckpt_path={last}", output_dir=tmp_path / "b"))


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tiny_train_cfg, tmp_path):
    run = tmp_path / "nan"
    cfg = tiny_train_cfg(
        "model.filters=[8]",
        "trainer.max_epochs=3",
        "+callbacks.nan._target_=fault_injection.InjectNaN",
        "+callbacks.nan.epoch=1",
        "+callbacks.nan.batch=2",
        output_dir=run,
    )
    with pytest.raises(TrainingDivergedError, match=r"(?i)nan.*Last good checkpoint: .*last.ckpt"):
        train(cfg)
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0  # written after epoch 0, not overwritten by the diverged epoch
    floats = [t for t in last["state_dict"].values() if t.is_floating_point()]
    assert all(torch.isfinite(t).all() for t in floats)
    assert not (run / "metrics.json").exists()


def test_nan_weights_at_the_end_of_an_epoch_are_never_checkpointed(tiny_train_cfg, tmp_path):
    # Weights that turn NaN in an epoch's last step are only seen at the next forward pass:
    # the epoch-end checkpoint must refuse them rather than overwrite last.ckpt.
    run = tmp_path / "nan_end"
    cfg = tiny_train_cfg(
        "model.filters=[8]",
        "trainer.max_epochs=3",
        "+callbacks.nan._target_=fault_injection.InjectNaN",
        "+callbacks.nan.epoch=1",
        "+callbacks.nan.batch=8",  # 260 images / 32 = 9 batches: the last one
        "+callbacks.nan.after_step=true",
        output_dir=run,
    )
    with pytest.raises(TrainingDivergedError, match=r"weights of .* became NaN.*Last good"):
        train(cfg)
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0


def test_a_run_killed_while_testing_resumes_to_the_real_best_scores(
    tiny_train_cfg, fake_data_dir: Path, tmp_path: Path
) -> None:
    killed = tmp_path / "killed"
    result = run_train_cli(
        [
            *TINY_OVERRIDES,
            *RUN,
            f"data.root={fake_data_dir}",
            f"hydra.run.dir={killed}",
            "+callbacks.kill._target_=fault_injection.KillAt",
            "+callbacks.kill.stage=test",  # every epoch done, killed while testing
        ]
    )
    assert result.returncode == -9, result.stderr[-2000:]
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1

    resumed = train(tiny_train_cfg(*RUN, "ckpt_path=last", output_dir=killed))
    whole = train(tiny_train_cfg(*RUN, output_dir=tmp_path / "whole"))

    saved = json.loads((killed / "metrics.json").read_text())
    assert saved["val/acc_best"] is not None and saved["monitor"]["best"] is not None
    assert saved["val/acc_best"] == whole["val/acc_best"]
    assert saved["monitor"] == whole["monitor"]
    assert Path(saved["best_checkpoint"]).name == Path(whole["best_checkpoint"]).name
    assert scores_of(resumed) == scores_of(whole)


def kill_while_writing_last_ckpt(
    data_dir: Path, run_dir: Path, at: str, env_extra: dict | None = None, *overrides: str
) -> None:
    """Train RUN in ``run_dir`` and SIGKILL it while epoch 1 writes last.ckpt."""
    result = run_train_cli(
        [
            *TINY_OVERRIDES,
            *RUN,
            *overrides,
            f"data.root={data_dir}",
            f"hydra.run.dir={run_dir}",
            "+callbacks.kill._target_=fault_injection.KillWhileWriting",
            f"+callbacks.kill.at={at}",  # the 2nd last.ckpt: epoch 0's is written
        ],
        env_extra,
    )
    assert result.returncode == -9, result.stderr[-2000:]


def other_filesystem_dir(path: Path) -> Path:
    """A fresh folder on a filesystem other than ``path``'s (/dev/shm), or skip."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(path).st_dev:
        pytest.skip("no second filesystem (/dev/shm) to put TMPDIR on")
    return Path(tempfile.mkdtemp(dir=shm))


def test_a_kill_while_last_ckpt_is_written_on_another_filesystem_keeps_the_previous_one(
    tiny_train_cfg, fake_data_dir: Path, tmp_path: Path
) -> None:
    # Lightning staged checkpoints in TMPDIR and moved them: across filesystems that is a
    # copy that first truncates last.ckpt, and a kill then left a 0-byte file.
    tmpdir = other_filesystem_dir(tmp_path)
    run = tmp_path / "run"
    try:
        kill_while_writing_last_ckpt(fake_data_dir, run, "open", {"TMPDIR": str(tmpdir)})
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    resumed = train(tiny_train_cfg(*RUN, "ckpt_path=last", output_dir=run))
    assert resumed["epochs"] == 2 and resumed["test/acc"] is not None


def test_the_next_start_of_a_killed_run_removes_what_it_left(
    tiny_train_cfg, fake_data_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    loss = "monitor=val/loss"  # still improving at epoch 1 (val/acc is 100% at epoch 0)
    kill_while_writing_last_ckpt(fake_data_dir, run, "rename", None, loss)
    assert "epoch_001.ckpt" in os.listdir(checkpoints)  # epoch 1's best, but last.ckpt is 0's

    metrics = train(tiny_train_cfg(*RUN, loss, "ckpt_path=last", output_dir=run))
    # No temporary file of the killed write, no epoch_001-v1.ckpt of the redone epoch 1.
    assert sorted(os.listdir(checkpoints)) == ["epoch_001.ckpt", "last.ckpt"]
    assert metrics["best_checkpoint"] == str(checkpoints / "epoch_001.ckpt")
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 1


QUICK = ["model.filters=[8]", "trainer.max_epochs=1", "logger=none", "callbacks.lr_monitor=null"]


def test_resume_falls_back_to_the_newest_readable_checkpoint_when_last_is_broken(
    tiny_train_cfg, tmp_path: Path, caplog
) -> None:
    run = tmp_path / "run"
    first = train(tiny_train_cfg(*QUICK, output_dir=run))
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")  # as a non-atomic write left it
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        resumed = train(tiny_train_cfg(*QUICK, "ckpt_path=last", output_dir=run))
    best = run / "checkpoints" / "epoch_000.ckpt"
    assert f"Resuming from {best} instead" in caplog.text
    assert resumed["val/acc_best"] == first["val/acc_best"]
    assert scores_of(resumed) == scores_of(first)


def test_resume_with_no_readable_checkpoint_says_start_again(tiny_train_cfg, tmp_path) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("last.ckpt", "epoch_000.ckpt"):
        (checkpoints / name).write_bytes(b"")
    with pytest.raises(CheckpointError) as error:
        train(tiny_train_cfg("ckpt_path=last", output_dir=tmp_path / "run"))
    message = str(error.value)
    assert f"None of the 2 checkpoints in {checkpoints} can be read" in message
    assert message.endswith("Start the run again in a new directory (leave out hydra.run.dir).")
