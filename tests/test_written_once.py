"""Concepts written once: torch files, figures, seeded subsets, markdown tables and the data
module of a checkpoint, each checked on what it writes or returns."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import torch
from conftest import compose_config
from PIL import Image

from fmnist.analysis.importance import evaluation_subset
from fmnist.callbacks.outputs import save_figure
from fmnist.checkpoint import TEMPERATURE_KEY
from fmnist.inference.ood import OodDetector, load_detector, save_detector
from fmnist.results.report import Report
from fmnist.tables import markdown_table
from fmnist.training.load import datamodule_for, load_classifier, store_temperature
from fmnist.training.resume import AtomicCheckpointIO


def a_figure() -> plt.Figure:
    figure, axes = plt.subplots(figsize=(2, 2))
    axes.plot([0, 1, 4])
    return figure


def test_torch_writers_read_back_what_they_wrote_and_leave_no_temporary(tmp_path) -> None:
    checkpoint = {"state_dict": {"w": torch.arange(6.0)}, "epoch": 2}
    AtomicCheckpointIO().save_checkpoint(checkpoint, tmp_path / "io.ckpt")
    back = torch.load(tmp_path / "io.ckpt", weights_only=True)
    assert back["epoch"] == 2 and torch.equal(back["state_dict"]["w"], torch.arange(6.0))
    detector = OodDetector(torch.zeros(2, 3), torch.eye(3), 0.0, 1.0, 0.0, 1.0, 2.0, 0.9, "x")
    save_detector(detector, tmp_path / "ood.pt")
    loaded = load_detector(tmp_path / "ood.pt", "x")
    assert torch.equal(loaded.precision, torch.eye(3)) and loaded.threshold == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["io.ckpt", "ood.pt"]


def test_a_stored_temperature_loads_back_with_the_weights_untouched(
    tiny_checkpoint: Path, tmp_path
) -> None:
    path = tmp_path / "t.ckpt"
    path.write_bytes(tiny_checkpoint.read_bytes())
    before, _ = load_classifier(tiny_checkpoint)
    store_temperature(path, 1.5)
    after, _ = load_classifier(path)  # the checksum was updated: it still loads
    assert float(after.classifier.temperature) == 1.5
    state, stored = before.state_dict(), after.state_dict()
    assert [k for k in state if not torch.equal(state[k], stored[k])] == [TEMPERATURE_KEY]


def test_reports_and_callbacks_write_pngs_at_their_resolutions(tmp_path: Path) -> None:
    report = Report(tmp_path / "report", title="t")
    figures = a_figure(), a_figure()
    report.figure(figures[0], "f", "caption")
    trainer = SimpleNamespace(loggers=[], current_epoch=0)
    save_figure(trainer, figures[1], tmp_path / "callback.png", "tag")
    assert not any(plt.fignum_exists(f.number) for f in figures)  # both closed their figure
    for path, dpi in ((tmp_path / "report" / "f.png", 110), (tmp_path / "callback.png", 100)):
        with Image.open(path) as png:
            assert [round(d) for d in png.info["dpi"]] == [dpi, dpi] and min(png.size) > 150


def test_one_seeded_subset_sorted_distinct_and_all_when_too_few() -> None:
    index = evaluation_subset(100, 10, seed=3)
    assert torch.equal(index, evaluation_subset(100, 10, seed=3))
    assert torch.equal(index, index.sort()[0]) and len(index.unique()) == 10
    assert not torch.equal(index, evaluation_subset(100, 10, seed=4))
    assert torch.equal(evaluation_subset(5, 10, seed=3), torch.arange(5))
    assert torch.equal(evaluation_subset(5, None), torch.arange(5))


def test_every_markdown_table_escapes_pipes_as_markdown_table_does(tmp_path: Path) -> None:
    report = Report(tmp_path, title="t")
    report.table(["a", "b"], [["x|y", 1]])
    lines = markdown_table(["a", "b"], [["x|y", 1]])
    assert lines == ["| a | b |", "| --- | --- |", "| x\\|y | 1 |"]
    assert report.lines[2:5] == lines


def test_the_data_module_is_rebuilt_with_the_checkpoint_settings(fake_data_dir: Path) -> None:
    where = {"root": str(fake_data_dir), "download": False, "search_system": False,
             "strict": False, "val_size": 40}  # fmt: skip
    data = datamodule_for(where, {"val_size": 20, "split_seed": 1})
    assert len(data.split("val")) == 20 and data.split_seed == 1


def test_the_ood_fit_looks_for_the_data_where_training_does(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FMNIST_ROOT", str(tmp_path))
    cfg = compose_config("predict", ["ckpt=x", "images=y"], tmp_path)
    assert cfg.ood.data_root == cfg.paths.data_dir == f"{tmp_path}/data"
