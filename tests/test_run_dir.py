"""One run directory, one run: a second process is stopped, a finished run is not
overwritten, and a resume keeps what the run's state depends on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fmnist.errors import OutputDirError
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
