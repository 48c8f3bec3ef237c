"""No behaviour change across refactors: a short synthetic run's metrics.json, predictions.npz
and list of files, compared with those the same run wrote before the package was re-laid
(commit bcd02d5, this machine's CPU build of torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES, compose_config

from fmnist.data import CLASS_NAMES
from fmnist.metrics import classification_report
from fmnist.training.run import train

REFERENCE = Path(__file__).parent / "fixtures" / "reference_run"
#: What differs between any two runs: the wall time and where the run was.
UNSTABLE = ("train_time_s", "best_checkpoint")
FILES = [".lock", "activations/final_features.0.png", "activations/final_features.1.png",
         "activations/final_stats.json", "checkpoints/epoch_000.ckpt", "checkpoints/last.ckpt",
         "config.yaml", "importance.json", "importance.png", "learning_curves.json",
         "learning_curves.png", "metrics.json", "predictions.npz"]  # fmt: skip


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory, fake_data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    # The recipe the reference was recorded with (the default took up flips and TTA since).
    recipe = ["data.hflip=false", "module.tta_flip=false", "module.tta_shift=0"]
    overrides = ["model.filters=[8,16]", "trainer.max_epochs=1", "logger=none", "seed=0", *recipe]
    train(compose_config("train", TINY_OVERRIDES + overrides, out, fake_data_dir))
    return out


def test_a_short_run_writes_the_metrics_it_wrote_before(reference_run: Path) -> None:
    metrics = json.loads((reference_run / "metrics.json").read_text())
    for key in UNSTABLE:
        metrics.pop(key)
    assert metrics == json.loads((REFERENCE / "metrics.json").read_text())


def test_a_short_run_writes_the_predictions_it_wrote_before(reference_run: Path) -> None:
    now, before = np.load(reference_run / "predictions.npz"), np.load(REFERENCE / "predictions.npz")
    assert sorted(now.files) == sorted(before.files)
    for name in before.files:
        np.testing.assert_array_equal(now[name], before[name])


def test_a_short_run_writes_the_files_it_wrote_before(reference_run: Path) -> None:
    written = sorted(str(p.relative_to(reference_run)) for p in reference_run.rglob("*"))
    assert [p for p in written if "." in Path(p).name] == FILES


def test_the_classification_report_is_the_modules_on_the_same_predictions(
    reference_run: Path,
) -> None:
    """The one report function (the test step, baselines, task=model) gives, on the run's
    predictions.npz, exactly the run's test report."""
    metrics = json.loads((reference_run / "metrics.json").read_text())
    predictions = np.load(reference_run / "predictions.npz")
    arrays = (torch.from_numpy(predictions[k]) for k in ("predicted", "labels"))
    report = classification_report(*arrays, CLASS_NAMES)
    assert report == {name: metrics[name] for name in report}
