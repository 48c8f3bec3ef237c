"""The benchmark harness in tiny mode: every part runs and the results file is well-formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.parts import PARTS
from bench.run import main


def test_tiny_benchmark_writes_well_formed_results(tmp_path: Path) -> None:
    main(["--tiny", "--parts", *PARTS, "--out", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["tiny"] is True
    assert set(results["parts"]) == set(PARTS)
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch"]

    speedrun = results["parts"]["speedrun"]
    (run,) = speedrun["runs"]
    assert 0.0 <= run["test_acc"] <= 1.0 and run["steps"] == 3
    assert 0 < run["loop_s"] <= run["fit_s"] <= run["wall_s"]
    assert speedrun["all_reached_target"] == (run["test_acc"] >= speedrun["target_acc"])

    overhead = results["parts"]["overhead"]
    assert len(overhead["plain_loop_s"]) == len(overhead["lightning_loop_s"]) == 3
    ratio = sum(overhead["lightning_loop_s"]) / sum(overhead["plain_loop_s"])
    assert abs(overhead["ratio"] - ratio) < 1e-9

    data = results["parts"]["data"]
    assert data["dataloader_batches_per_s"] > 0 and data["model_steps_per_s"] > 0
    assert 0 < data["data_share_of_step"] < 1  # the model step includes the data

    callbacks = results["parts"]["callbacks"]["runs"]
    assert {"none", "default"} <= set(callbacks) and callbacks["none"]["added_s"] == 0
    default = callbacks["default"]
    epochs = results["parts"]["callbacks"]["default_epochs"]
    base_run = callbacks["none"]["wall_s"] + (epochs - 1) * callbacks["none"]["loop_s"]
    assert default["added_share_of_default_run"] == pytest.approx(default["added_s"] / base_run)
    assert set(results["parts"]["full"]["runs"]) == {"default", "seed"}

    table = (tmp_path / "results.md").read_text()
    assert table.count("| speedrun |") == 3 and "| overhead |" in table and "tiny mode" in table
    assert table.count("| callbacks |") == len(callbacks) - 1  # each against none

    # A second run of one part keeps the others.
    main(["--tiny", "--parts", "data", "--out", str(tmp_path)])
    assert set(json.loads((tmp_path / "results.json").read_text())["parts"]) == set(PARTS)
