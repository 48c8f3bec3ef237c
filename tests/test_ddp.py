"""DDP on CPU (gloo): one run directory, and test metrics equal to one process's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES
from sklearn.metrics import accuracy_score, f1_score

from fmnist.data import FILES, FashionMNISTDataModule, read_idx, write_idx
from fmnist.data.synthetic import write_synthetic_dataset
from fmnist.training.load import load_classifier

ROOT = Path(__file__).resolve().parents[1]
N_TEST = 79  # odd: a padding DistributedSampler would evaluate one image twice on 2 processes


@pytest.mark.slow  # two Python processes start torch and Lightning: ~20 s on a busy 2-core box
def test_ddp_two_cpu_processes_one_run_dir_and_exact_test_metrics(tmp_path: Path) -> None:
    data_dir = write_synthetic_dataset(tmp_path / "data")
    for stem in FILES["test"]:
        path = data_dir / f"{stem}.gz"
        write_idx(path, read_idx(path)[:N_TEST])
    logs = tmp_path / "logs"
    command = [sys.executable, "train.py", *TINY_OVERRIDES, "trainer=ddp_cpu",
               "trainer.devices=2", "model.filters=[8]", "model.hidden=16",
               f"data.root={data_dir}", f"paths.log_dir={logs}"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    # One run directory and one log for the run, not one per process.
    (run_dir,) = (logs / "train" / "runs").iterdir()
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
