"""DDP on CPU (gloo): one run directory, and test metrics equal to one process's."""

from __future__ import annotations

import collections
import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES
from sklearn.metrics import accuracy_score, f1_score

from bench.synthetic import write_idx, write_synthetic_dataset
from fmnist.data import FILES, FashionMNISTDataModule, read_idx
from fmnist.training.load import load_classifier

ROOT = Path(__file__).resolve().parents[1]
N_TEST = 79  # odd: a padding DistributedSampler would evaluate one image twice on 2 processes


#: On the PYTHONPATH of the DDP run: torchvision's Fashion-MNIST download, through its own
#: code, from a local server (the synthetic files, so no MD5 check).
MIRROR = """
import os
if os.environ.get("FMNIST_TEST_MIRROR"):
    from torchvision.datasets import FashionMNIST
    FashionMNIST.mirrors = [os.environ["FMNIST_TEST_MIRROR"]]
    FashionMNIST.resources = [(name, None) for name, _ in FashionMNIST.resources]
"""


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server of ``folder`` on localhost: its URL, and the paths it was asked for."""
    fetched: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", fetched
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, list[str]]:
    """One ``train.py`` run on two CPU processes, its output piped, with data.root a missing
    folder that torchvision fetches into: (run directory, the served files, stdout, the
    files the server was asked for)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    data_dir = write_synthetic_dataset(tmp_path / "mirror")
    for stem in FILES["test"]:
        path = data_dir / f"{stem}.gz"
        write_idx(path, read_idx(path)[:N_TEST])
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(MIRROR)
    python_path = [str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]
    logs = tmp_path / "logs"
    # The Rich bar on, as by default: piped, it gives way to one line per epoch.
    tiny = [o for o in TINY_OVERRIDES if "progress_bar" not in o]
    command = [sys.executable, "train.py", *tiny, "trainer=ddp_cpu",
               "trainer.devices=2", "model.filters=[8]", "model.hidden=16",
               f"data.root={tmp_path / 'fetched'}", "data.download=true",
               f"paths.log_dir={logs}"]  # fmt: skip
    with file_server(data_dir) as (url, fetched):
        env = {**os.environ, "FMNIST_TEST_MIRROR": url, "PYTHONPATH": os.pathsep.join(python_path)}
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
        )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (logs / "train" / "runs").iterdir()  # one run directory, not one per process
    return run_dir, data_dir, done.stdout, fetched


@pytest.mark.slow  # two Python processes start torch and Lightning: ~20 s on a busy 2-core box
def test_ddp_two_cpu_processes_one_run_dir_and_exact_test_metrics(ddp_run) -> None:
    run_dir, data_dir, _, _ = ddp_run
    # One log for the run, not one per process.
    assert [p.name for p in run_dir.glob("*.log")] == ["train.log"]
    log = (run_dir / "train.log").read_text()
    assert log.count("Training") == 2  # both processes wrote to it

    metrics = json.loads((run_dir / "metrics.json").read_text())
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == N_TEST  # every test image evaluated exactly once

    # The same checkpoint evaluated in this single process.
    module, _ = load_classifier(metrics["best_checkpoint"])
    datamodule = FashionMNISTDataModule(root=str(data_dir), search_system=False, download=False,
                                        strict=False, val_size=40)  # fmt: skip
    datamodule.setup()
    test = datamodule.split("test")
    with torch.no_grad():
        predictions = module(test.images).argmax(1)
    labels = test.labels.numpy()
    assert metrics["test/acc"] == pytest.approx(accuracy_score(labels, predictions), abs=1e-6)
    assert metrics["test/f1_macro"] == pytest.approx(
        f1_score(labels, predictions, average="macro"), abs=1e-6
    )


@pytest.mark.slow
def test_ddp_fetches_a_missing_dataset_once_and_logs_one_line_per_epoch(ddp_run) -> None:
    run_dir, _, stdout, fetched = ddp_run
    log = (run_dir / "train.log").read_text()
    # prepare_data fetched the four files in one process; both processes then read them.
    assert log.count("Downloading Fashion-MNIST into") == 1
    # Each file asked for once by one download (torchvision's redirect probe is a GET too).
    requests = collections.Counter(fetched)
    assert set(requests) == {f"/{stem}.gz" for pair in FILES.values() for stem in pair}
    assert set(requests.values()) == {2}
    assert log.count("Fashion-MNIST: 260 train / 40 val / 79 test images") == 2
    # Piped: no bar, one plain line per epoch (rank 0's), the same lines in train.log.
    lines = [line for line in stdout.splitlines() if "fmnist.callbacks.progress" in line]
    assert len(lines) == 2 and [line for line in lines if line in log] == lines
    assert [line.split(" - ")[1].split(":")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
