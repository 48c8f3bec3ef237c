"""Files the project writes: atomic (the old file or the whole new one), and a full disk is a
one-line error naming the file and the free space, with nothing half-written left behind."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from fault_injection import fill_disk
from PIL import Image

from fmnist.callbacks.outputs import save_figure
from fmnist.errors import OutputDirError
from fmnist.files import TMP_PREFIX, atomic_write_bytes, write_json
from fmnist.inference.export import export_onnx, export_torchscript
from fmnist.inference.images import write_csv
from fmnist.results.report import Report
from fmnist.training.run import train

#: A run small enough for a few MiB of disk: no logger, no explanation figures.
SMALL_RUN = [
    "model.filters=[8]",
    "model.hidden=16",
    "trainer.max_epochs=1",
    "logger=none",
    "callbacks.lr_monitor=null",
    "callbacks.activation_capture=null",
    "callbacks.permutation_importance=null",
    "callbacks.learning_curves=null",
]


def test_a_full_disk_names_the_file_and_the_free_space_and_keeps_the_old_file(
    small_disk,
) -> None:
    disk = small_disk("1M")
    target = disk / "metrics.json"
    write_json(target, {"test/acc": 0.5})
    with pytest.raises(
        OutputDirError, match=rf"Cannot write {target}: No space .* \(1.9 MiB to write, .* free"
    ):
        atomic_write_bytes(target, b"x" * 2_000_000)  # twice the disk
    assert json.loads(target.read_text()) == {"test/acc": 0.5}  # the previous file intact
    assert [p.name for p in disk.iterdir()] == ["metrics.json"]  # no partial file


def test_a_new_file_on_a_full_disk_leaves_no_empty_file(small_disk) -> None:
    disk = small_disk("1M")
    fill_disk(disk)
    with pytest.raises(OutputDirError, match=r", 0 B free there\)"):
        write_json(disk / "metrics.json", {"test/acc": 0.5})
    assert [p.name for p in disk.iterdir()] == ["filler"]


def test_a_disk_full_after_testing_still_prints_the_test_metrics(
    tiny_train_cfg, small_disk, capsys
) -> None:
    run = small_disk("16M") / "run"
    cfg = tiny_train_cfg(
        *SMALL_RUN, "+callbacks.fill._target_=fault_injection.FillDiskAfterTest", output_dir=run
    )
    with pytest.raises(OutputDirError, match=rf"Cannot write {run / 'metrics.json'}: No space"):
        train(cfg)
    printed = capsys.readouterr().out  # the table, printed before metrics.json is written
    accuracy = re.search(r"test/acc\s+│\s+(\d+\.\d\d)%", printed)
    assert accuracy and 0 <= float(accuracy[1]) <= 100, printed
    assert not (run / "metrics.json").exists()
    assert not [p for p in run.rglob("*") if p.name.startswith(".fmnist-tmp-")]


def _classifier():
    from fmnist.training.module import ClassificationModule

    net = {"_target_": "fmnist.models.CNN", "filters": [4], "hidden": 8}
    return ClassificationModule(net=net).classifier.eval()


def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1], [1, 0])
    return figure


def _csv(path: Path) -> Path:
    from fmnist.inference.images import Prediction

    return write_csv([Prediction("shirt.png", 6, 0.9, [("Shirt", 0.9), ("Coat", 0.1)])], path)


#: Every kind of file the project writes outside Lightning, by name: writer(path).
WRITERS = {
    "predictions.csv": _csv,
    "model.pt": lambda path: export_torchscript(_classifier(), path),
    "model.onnx": lambda path: export_onnx(_classifier(), path),
    "report.md": lambda path: Report(path.parent, "A report").write(),
    "report_figure.png": lambda path: Report(path.parent, "r").figure(_figure(), path.stem, "c"),
    "callback_figure.png": lambda path: save_figure(
        SimpleNamespace(loggers=[], current_epoch=0), _figure(), path, "tag"
    ),  # fmt: skip
    "metrics.json": lambda path: write_json(path, {"test/acc": 0.5}),
}


@pytest.mark.parametrize("name", WRITERS)
def test_every_writer_on_a_full_disk_keeps_the_previous_file(small_disk, name: str) -> None:
    disk = small_disk("2M")
    path = disk / name
    WRITERS[name](path)
    before = path.read_bytes()
    fill_disk(disk)
    with pytest.raises(OutputDirError, match=rf"Cannot write {path}: No space left .*, 0 B free"):
        WRITERS[name](path)
    assert before and path.read_bytes() == before
    assert sorted(p.name for p in disk.iterdir()) == sorted([name, "filler"])


def test_a_run_on_a_full_disk_stops_before_training_without_a_partial_config(
    tiny_train_cfg, small_disk
) -> None:
    disk = small_disk("1M")
    fill_disk(disk)
    run = disk / "run"
    with pytest.raises(OutputDirError, match=rf"Cannot write {run / 'config.yaml'}: No space"):
        train(tiny_train_cfg(*SMALL_RUN, output_dir=run))
    assert not (run / "config.yaml").exists() and not (run / "checkpoints").exists()


def test_a_disk_full_at_the_end_of_training_leaves_no_partial_file(
    tiny_train_cfg, small_disk
) -> None:
    run = small_disk("16M") / "run"
    overrides = [o for o in SMALL_RUN if not o.startswith("callbacks.")]  # figures and JSON on
    cfg = tiny_train_cfg(
        *overrides,
        "callbacks.lr_monitor=null",
        "+callbacks.fill._target_=fault_injection.FillDiskAfterTraining",
        output_dir=run,
    )
    with pytest.raises(OutputDirError, match=rf"Cannot write {run}/.*: No space left"):
        train(cfg)
    written = [p for p in run.rglob("*") if p.is_file() and p.name != "filler"]
    assert not [p for p in written if p.name.startswith(TMP_PREFIX)]
    for path in written:  # each one whole
        if path.suffix == ".png":
            Image.open(path).verify()
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".ckpt":
            torch.load(path, weights_only=True)


def test_written_files_get_the_permissions_of_an_ordinary_write(tmp_path) -> None:
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    kept.chmod(0o640)  # set by the user: replacing the file keeps it
    umask = os.umask(0o022)
    try:
        new = write_json(tmp_path / "new.json", {"test/acc": 0.5})
        write_json(kept, {"test/acc": 0.5})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644  # 0666 less the umask, as open() does
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
