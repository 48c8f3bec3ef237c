"""Files the project writes: atomic (the old file or the whole new one), and a full disk is a
one-line error naming the file and the free space, with nothing half-written left behind."""

from __future__ import annotations

import json
import re

import pytest
from fault_injection import fill_disk

from fmnist.errors import OutputDirError
from fmnist.runs.files import atomic_write_bytes, write_json
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
    with pytest.raises(OutputDirError, match=rf"Cannot write {target}: .*space.* free there"):
        atomic_write_bytes(target, b"x" * 2_000_000)  # twice the disk
    assert json.loads(target.read_text()) == {"test/acc": 0.5}  # the previous file intact
    assert [p.name for p in disk.iterdir()] == ["metrics.json"]  # no partial file


def test_a_new_file_on_a_full_disk_leaves_no_empty_file(small_disk) -> None:
    disk = small_disk("1M")
    fill_disk(disk)
    with pytest.raises(OutputDirError, match=r"\(0 B free there\)"):
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
