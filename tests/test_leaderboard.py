"""The leaderboard: every finished run and baseline, seeds grouped, sorted by test accuracy."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from fmnist.config import CONF_DIR
from fmnist.errors import ConfigError
from fmnist.results.leaderboard import PUBLISHED, find_entries, leaderboard
from tests.conftest import compose_config


def fake_run(folder: Path, seed: int, acc: float, filters: list[int], overrides: list[str]) -> None:
    """A finished training run as train.py leaves it: config.yaml, .hydra, metrics.json."""
    (folder / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "model": {"filters": filters}, "paths": {"output_dir": str(folder)},
              "trainer": {"max_epochs": 2, "default_root_dir": str(folder)},
              "data": {"root": "/somewhere", "val_size": 40}}  # fmt: skip
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    OmegaConf.save(OmegaConf.create([*overrides, f"seed={seed}"]), folder / ".hydra/overrides.yaml")
    metrics = {"test/acc": acc, "val/acc_best": acc + 0.01, "test/f1_macro": acc, "seed": seed,
               "parameters": 1000 * len(filters), "train_time_s": 60.0 * (seed + 1)}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))


def fake_baseline(folder: Path, seed: int, acc: float) -> None:
    folder.mkdir(parents=True)
    baseline = {"name": "random_forest", "features": "pixels", "train_images": 100,
                "normalize": "global",
                "estimator": f"RandomForestClassifier(n_jobs=-1, random_state={seed})"}  # fmt: skip
    metrics = {"test/acc": acc, "val/acc_best": acc, "parameters": 50, "train_time_s": 3.0,
               "seed": seed, "baseline": baseline}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    logs = tmp_path / "out" / "logs"
    fake_run(logs / "train/runs/a", 0, 0.90, [4], [])
    fake_run(logs / "train/runs/b", 1, 0.92, [4], [])
    fake_run(logs / "train/multiruns/m/0", 0, 0.96, [8], ["model.filters=[8]"])
    fake_baseline(logs / "analyze/runs/x/baselines/random_forest", 0, 0.85)
    fake_baseline(logs / "analyze/runs/y/baselines/random_forest", 1, 0.87)
    unfinished = logs / "train/runs/killed"
    unfinished.mkdir(parents=True)
    (unfinished / "metrics.json").write_text(json.dumps({"test/acc": None, "seed": 0}))
    return logs


def test_leaderboard_groups_seeds_and_sorts(logs: Path) -> None:
    entries, skipped = find_entries([logs, logs / "train"])  # a run found twice counts once
    assert len(entries) == 5 and skipped == []
    rows = leaderboard(entries, [{"name": "ResNet-18", "test_acc": 0.949, "source": "README"}])
    assert [r.name for r in rows] == [
        "train.py model.filters=[8]",
        "ResNet-18",
        "train.py (defaults)",
        "baseline random_forest (100 train images)",
    ]
    assert [r.test_acc for r in rows] == sorted((r.test_acc for r in rows), reverse=True)
    default = rows[2]
    assert default.seeds == [0, 1] and default.kind == "trained"
    assert default.test_acc == pytest.approx(0.91)
    assert default.test_acc_std == pytest.approx(statistics.stdev([0.90, 0.92]))
    assert default.train_time_s == pytest.approx(90.0) and default.val_acc == pytest.approx(0.92)
    assert rows[1].kind == PUBLISHED and rows[1].seeds == []
    assert rows[3].seeds == [0, 1] and rows[3].test_acc == pytest.approx(0.86)
    assert rows[0].test_acc_std is None


def test_leaderboard_task_writes_the_table(logs: Path, tmp_path: Path) -> None:
    from fmnist.tasks import run_analysis

    extra = tmp_path / "elsewhere"
    fake_run(extra / "seed_s0", 0, 0.914, [32, 64, 128], ["experiment=seed"])
    fake_run(logs / "train/other/not_asked_for", 0, 0.99, [2], ["model.filters=[2]"])
    fake_run(logs / "train/runs/percent", 0, 0.99, [2], ["model.filters=[2]"])
    (logs / "train/runs/percent/metrics.json").write_text('{"test/acc": 93.73}')
    runs = f"runs=[{extra},{logs / 'train/runs'},{logs / 'analyze'}]"
    cfg = compose_config("analyze", ["task=leaderboard", runs, "task.sweep=m"], tmp_path / "out")
    GlobalHydra.instance().clear()
    report = run_analysis(cfg).read_text()
    with open(tmp_path / "out" / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    names = [r["model"] for r in rows]
    accuracies = [float(r["test acc %"].split(" ")[0]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert names.index("train.py model.filters=[8]") < names.index("ResNet-18")  # 96.0 > 94.9
    assert "train.py experiment=seed" in names
    assert "train.py model.filters=[2]" not in names  # logs/ is not searched unasked
    published = [r for r in rows if r["kind"] == PUBLISHED]
    quoted = OmegaConf.load(CONF_DIR / "task" / "leaderboard.yaml").published
    assert {r["model"] for r in published} == {p.name for p in quoted}
    assert {"ResNet-18", "HOG + SVM", "2 conv + 2 FC, random horizontal flips"} <= set(names)
    default = next(r for r in rows if r["model"] == "train.py (defaults)")
    assert default["test acc %"] == "91.00 ± 1.41" and default["seeds"] == "2 (0 1)"
    assert f"- {logs}/train/runs/percent: unreadable: metrics.json: test/acc = 93.73 is " in report
    table = (tmp_path / "out" / "leaderboard.md").read_text().splitlines()
    assert len(table) == 2 + len(rows) and all(line in report for line in table[2:])


def test_a_run_without_recorded_overrides_is_not_called_defaults(tmp_path: Path) -> None:
    fake_run(tmp_path / "r", 0, 0.9, [4], ["experiment=quick"])
    (tmp_path / "r/.hydra/overrides.yaml").unlink()  # composed outside train.py's Hydra
    (row,) = leaderboard(find_entries([tmp_path])[0])
    assert row.name == "train.py (overrides not recorded: r)"


def test_rows_name_their_runs_without_machine_paths(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the working directory a run is shown relative to it; outside, by its name."""
    monkeypatch.chdir(tmp_path / "out")
    outside = tmp_path / "elsewhere"
    fake_run(outside / "seed_s0", 0, 0.914, [32, 64, 128], ["experiment=seed"])
    rows = leaderboard(find_entries([logs, outside])[0], [])
    sources = {r.name: r.source for r in rows}
    assert sources["train.py (defaults)"] == "logs/train/runs/a, logs/train/runs/b"
    assert sources["train.py experiment=seed"] == "seed_s0"
    assert not any(str(tmp_path) in r.source for r in rows)


def test_the_leaderboard_ranks_only_the_runs_it_is_given(tmp_path: Path) -> None:
    from fmnist.tasks import run_analysis

    logs = tmp_path / "out" / "logs"
    fake_run(logs / "train/multiruns/2026-01-01/0", 0, 0.90, [4], ["seed=0"])
    cfg = compose_config("analyze", ["task=leaderboard"], tmp_path / "out")
    GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match=r"runs=\[DIR,...\] .* or task.sweep=NAME"):
        run_analysis(cfg)
    cfg = compose_config("analyze", ["task=leaderboard", "task.sweep=typo"], tmp_path / "out")
    GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match="the latest: 2026-01-01"):
        run_analysis(cfg)


def test_runs_stored_as_percentages_or_booleans_are_left_out_with_a_reason(tmp_path) -> None:
    for name, acc in (("good", 0.9), ("percent", 93.73), ("boolean", True), ("text", "93.7%")):
        fake_run(tmp_path / name, 0, 0.9, [4], [f"x={name}"])
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        (tmp_path / name / "metrics.json").write_text(json.dumps({**metrics, "test/acc": acc}))
    entries, skipped = find_entries([tmp_path])
    assert [e.path.name for e in entries] == ["good"]
    assert [(e.scores["test/acc"]) for e in entries] == [0.9]
    assert sorted(skipped) == [
        f"{tmp_path}/boolean: unreadable: metrics.json: test/acc is True, not a number",
        f"{tmp_path}/percent: unreadable: metrics.json: test/acc = 93.73 is outside [0, 1] (a "
        "percentage? they are stored as fractions)",
        f"{tmp_path}/text: unreadable: metrics.json: test/acc is '93.7%', not a number",
    ]
