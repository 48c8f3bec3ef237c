"""One run directory, one run: a second process is stopped, a finished run is not
overwritten, and a resume keeps what the run's state depends on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist.errors import ConfigError, OutputDirError
from fmnist.training.run import train

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
