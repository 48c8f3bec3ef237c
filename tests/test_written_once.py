"""Concepts written once: each former path of a torch object, a figure and a seeded subset
goes through the one function and gives the same bytes or indices."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import torch
from conftest import compose_config

from fmnist.analysis.importance import evaluation_subset
from fmnist.callbacks.outputs import save_figure
from fmnist.files import write_figure, write_torch
from fmnist.inference.ood import OodDetector, save_detector
from fmnist.results.report import Report
from fmnist.tables import markdown_table
from fmnist.training.load import datamodule_for, store_temperature
from fmnist.training.resume import AtomicCheckpointIO


def a_figure() -> plt.Figure:
    figure, axes = plt.subplots(figsize=(2, 2))
    axes.plot([0, 1, 4])
    return figure


def test_every_torch_writer_writes_what_write_torch_writes(tmp_path: Path) -> None:
    checkpoint = {"state_dict": {"w": torch.arange(6.0)}, "epoch": 2}
    AtomicCheckpointIO().save_checkpoint(checkpoint, tmp_path / "io.ckpt")
    write_torch(tmp_path / "one.ckpt", checkpoint)
    assert (tmp_path / "io.ckpt").read_bytes() == (tmp_path / "one.ckpt").read_bytes()
    detector = OodDetector(torch.zeros(2, 3), torch.eye(3), 0.0, 1.0, 0.0, 1.0, 2.0, 0.9, "x")
    save_detector(detector, tmp_path / "ood.pt")
    write_torch(tmp_path / "one.pt", asdict(detector))
    assert (tmp_path / "ood.pt").read_bytes() == (tmp_path / "one.pt").read_bytes()


def test_a_stored_temperature_is_written_by_write_torch(tiny_checkpoint: Path, tmp_path) -> None:
    path = tmp_path / "t.ckpt"
    path.write_bytes(tiny_checkpoint.read_bytes())
    store_temperature(path, 1.5)
    stored = torch.load(path, weights_only=True)
    write_torch(tmp_path / "one.ckpt", stored)
    assert path.read_bytes() == (tmp_path / "one.ckpt").read_bytes()


def test_reports_and_callbacks_write_figures_as_write_figure(tmp_path: Path) -> None:
    report = Report(tmp_path / "report", title="t")
    report.figure(a_figure(), "f", "caption")
    trainer = SimpleNamespace(loggers=[])
    save_figure(trainer, a_figure(), tmp_path / "callback.png", "tag", 0)
    figure = a_figure()
    write_figure(tmp_path / "110.png", figure, dpi=110)
    write_figure(tmp_path / "100.png", figure, dpi=100)
    plt.close(figure)
    assert (tmp_path / "report" / "f.png").read_bytes() == (tmp_path / "110.png").read_bytes()
    assert (tmp_path / "callback.png").read_bytes() == (tmp_path / "100.png").read_bytes()


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
