"""Loggers (conf/logger/): each run's config, metrics and figures read back with the
logger's own reader: csv for the CSV table, MLflow's client, wandb's own run records."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from fmnist.config import CONF_DIR
from fmnist.training.run import train

#: A tiny run whose figures (learning curves, activations) are cheap.
SMALL = ["model.filters=[4]", "model.hidden=8", "callbacks.permutation_importance=null"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_default_run_leaves_a_csv_table_with_a_row_per_epoch(tiny_train_cfg) -> None:
    cfg = tiny_train_cfg(*SMALL, "callbacks.activation_capture=null")
    assert list(cfg.logger) == ["tensorboard", "csv"]
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    rows = read_csv(run / "csv" / "metrics.csv")
    epochs = [row for row in rows if row["val/acc"]]
    assert [int(row["epoch"]) for row in epochs] == [0, 1]
    assert max(float(row["val/acc"]) for row in epochs) == pytest.approx(metrics["val/acc_best"])
    (test,) = [row for row in rows if row["test/acc"]]
    assert float(test["test/acc"]) == pytest.approx(metrics["test/acc"], abs=1e-7)
    hparams = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    assert hparams["seed"] == 0 and hparams["model"]["filters"] == [4]


def test_mlflow_run_reads_back_with_mlflows_client(tiny_train_cfg, monkeypatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    # What conf/logger/mlflow.yaml sets for a command-line run (hydra.job.env_set).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    cfg = tiny_train_cfg(*SMALL, "logger=[csv,mlflow]")
    metrics = train(cfg)
    run_dir = Path(cfg.paths.output_dir)

    client = MlflowClient(f"file:{cfg.paths.log_dir}/mlflow")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["output_dir"] == str(run_dir)
    assert run.data.params["seed"] == "0" and run.data.params["model/filters"] == "[4]"
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-7)
    # Per-epoch metrics, the same values as the CSV table's.
    history = client.get_metric_history(run.info.run_id, "val/acc")
    epochs = [row for row in read_csv(run_dir / "csv" / "metrics.csv") if row["val/acc"]]
    assert [m.value for m in history] == pytest.approx([float(r["val/acc"]) for r in epochs])
    assert [m.step for m in history] == [int(r["step"]) for r in epochs]
    # The figures as artifacts, in the run directory's layout, byte for byte.
    local = Path(client.download_artifacts(run.info.run_id, "", str(run_dir / "download")))
    for name in ("learning_curves.png", "activations/final_features.0.png"):
        assert (local / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_a_command_line_mlflow_run_may_use_mlflows_file_store() -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", ["logger=[tensorboard,mlflow]"], return_hydra_config=True)
    assert list(cfg.logger) == ["tensorboard", "mlflow"]
    assert cfg.hydra.job.env_set == {"MLFLOW_ALLOW_FILE_STORE": "true"}


def wandb_records(run_dir: Path) -> list:
    """The records of an offline wandb run, from its transaction log (``run-*.wandb``) in
    wandb's own protobuf format: a 7-byte header, then 32 KiB blocks of chunks, each with a
    7-byte header (crc, length, type: 1 whole, 2-4 first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("run-*.wandb")
    data, block, records, chunk, pos = path.read_bytes(), 32768, [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # zero padding at a block's end
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = chunk + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(chunk))
            chunk = b""
    return records


def test_wandb_offline_run_keeps_config_metrics_and_figures(tiny_train_cfg, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = tiny_train_cfg(*SMALL, "callbacks.activation_capture=null", "logger=wandb")
    metrics = train(cfg)
    wandb.teardown()  # its service process closes the run's files
    (offline,) = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*")
    records = wandb_records(offline)
    config = {
        item.key: json.loads(item.value_json)
        for record in records
        if record.HasField("config")
        for item in record.config.update
    }
    assert config["seed"] == 0 and config["model"]["filters"] == [4]
    summary = {
        "/".join(item.nested_key) or item.key: json.loads(item.value_json)
        for record in records
        if record.HasField("summary")
        for item in record.summary.update
    }
    assert summary["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-7)
    (image,) = (offline / "files" / "media" / "images").glob("learning_curves_*.png")
    figure = Path(cfg.paths.output_dir) / "learning_curves.png"
    assert image.read_bytes() == figure.read_bytes()
