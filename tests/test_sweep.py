"""Sweeps: the multirun summary, seed groups, re-running an unfinished sweep, Optuna."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES
from omegaconf import OmegaConf

from fmnist.config import CONF_DIR
from fmnist.results.sweep import read_sweep, seed_groups, varying_keys, write_summary

ROOT = Path(__file__).resolve().parents[1]
#: The smallest CNN that still learns the tiny data: runs take about a second.
SMALL = ["model.filters=[4]", "model.hidden=8", "trainer.max_epochs=1", "logger=none",
         "callbacks.lr_monitor=null"]  # fmt: skip


def write_job(sweep: Path, num: int, overrides: list[str], metrics: dict | None, error: str = ""):
    """A job directory as Hydra and train() leave it."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    seed = next((int(o.split("=")[1]) for o in overrides if o.startswith("seed=")), 0)
    OmegaConf.save(OmegaConf.create({"seed": seed}), job / ".hydra" / "config.yaml")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if error:
        (job / "error.txt").write_text(error)


def fake_metrics(val: float, test: float, seed: int) -> dict:
    return {
        "monitor": {"name": "val/acc", "mode": "max", "best": val},
        "val/acc_best": val,
        "train_time_s": 1.5,
        "parameters": 1234,
        "seed": seed,
        "test/acc": test,
        "test/f1_macro": test - 0.01,
        "test/f1_weighted": test - 0.02,
    }


def test_summary_sorts_groups_seeds_and_lists_failures(tmp_path: Path) -> None:
    results = {  # (lr, seed) -> (val, test)
        ("1e-3", 0): (0.80, 0.79),
        ("1e-3", 1): (0.84, 0.82),
        ("1e-3", 2): (0.83, 0.80),
        ("3e-3", 0): (0.90, 0.88),
        ("3e-3", 1): (0.86, 0.85),
    }
    for num, ((lr, seed), (val, test)) in enumerate(results.items()):
        write_job(tmp_path, num, ["x=1", f"optimizer.lr={lr}", f"seed={seed}"],
                  fake_metrics(val, test, seed))  # fmt: skip
    write_job(tmp_path, 5, ["x=1", "optimizer.lr=1", "seed=0"], None, "ConfigError: bad lr\n")
    write_job(tmp_path, 6, ["x=1", "optimizer.lr=1", "seed=1"], None)  # killed: unfinished

    jobs, groups = write_summary(tmp_path)

    assert [j.job for j in jobs] == ["3", "4", "1", "2", "0", "5", "6"]  # best val first
    assert [j.status for j in jobs][-2:] == ["failed", "unfinished"]
    assert varying_keys(jobs) == {"optimizer.lr", "seed"}
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["job"] for r in rows] == [j.job for j in jobs]
    assert rows[0]["overrides"] == "optimizer.lr=3e-3" and rows[0]["seed"] == "0"
    assert float(rows[0]["test/f1_weighted"]) == pytest.approx(0.86)
    assert rows[5]["error"] == "ConfigError: bad lr" and rows[5]["val/acc_best"] == ""

    by_lr = {g.overrides: g for g in groups}
    assert list(by_lr) == ["optimizer.lr=3e-3", "optimizer.lr=1e-3"]  # best mean first
    vals = [0.80, 0.84, 0.83]
    assert by_lr["optimizer.lr=1e-3"].seeds == [0, 1, 2]
    assert by_lr["optimizer.lr=1e-3"].mean["val/acc_best"] == pytest.approx(np.mean(vals))
    assert by_lr["optimizer.lr=1e-3"].std["val/acc_best"] == pytest.approx(np.std(vals, ddof=1))
    assert by_lr["optimizer.lr=3e-3"].std["test/acc"] == pytest.approx(np.std([0.88, 0.85], ddof=1))
    group_rows = list(csv.DictReader((tmp_path / "seed_groups.csv").open()))
    assert float(group_rows[1]["val/acc_best_mean"]) == pytest.approx(np.mean(vals))

    markdown = (tmp_path / "summary.md").read_text()
    assert "5 of 7 jobs completed" in markdown
    assert f"{100 * np.mean(vals):.2f} ± {100 * np.std(vals, ddof=1):.2f}" in markdown
    assert "job 5 (`optimizer.lr=1`, seed 0): ConfigError: bad lr" in markdown


def test_a_loss_monitored_sweep_puts_the_lowest_loss_first(tmp_path: Path) -> None:
    losses = {0: 0.52, 1: 0.31, 2: 0.47}  # job -> best val/loss
    for num, loss in losses.items():
        metrics = fake_metrics(0.8, 0.8, num)
        metrics["monitor"] = {"name": "val/loss", "mode": "min", "best": loss}
        write_job(tmp_path, num, [f"optimizer.lr={num}"], metrics)
    jobs, _ = write_summary(tmp_path)
    assert [j.job for j in jobs] == ["1", "2", "0"]  # lowest loss first
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [float(r["monitor_best"]) for r in rows] == [0.31, 0.47, 0.52]
    assert "val/loss 0.3100" in (tmp_path / "summary.md").read_text()


def test_ece_and_mean_corruption_columns_appear_when_a_run_computed_them(tmp_path: Path) -> None:
    write_job(tmp_path / "old", 0, ["seed=0"], fake_metrics(0.8, 0.8, 0))
    write_summary(tmp_path / "old")
    assert "corruption acc" not in (tmp_path / "old" / "summary.md").read_text()
    rows = list(csv.DictReader((tmp_path / "old" / "summary.csv").open()))
    assert rows[0]["test/mean_corruption_acc"] == "" and rows[0]["test/ece"] == ""

    sweep = tmp_path / "new"
    for seed, (ece, corruption) in enumerate(((0.021, 0.61), (0.013, 0.67))):
        metrics = {**fake_metrics(0.8, 0.8, seed), "test/ece": ece,
                   "test/mean_corruption_acc": corruption}  # fmt: skip
        write_job(sweep, seed, [f"seed={seed}", "experiment=robust"], metrics)
    write_job(sweep, 2, ["seed=2", "experiment=robust"], fake_metrics(0.8, 0.8, 2))  # callback off
    jobs, groups = write_summary(sweep)
    rows = {r["job"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    assert float(rows["1"]["test/mean_corruption_acc"]) == pytest.approx(0.67)
    assert float(rows["0"]["test/ece"]) == pytest.approx(0.021)
    assert rows["2"]["test/mean_corruption_acc"] == ""
    assert groups[0].mean["test/mean_corruption_acc"] == pytest.approx(0.64)
    markdown = (sweep / "summary.md").read_text()
    assert "| test ECE % | mean corruption acc % |" in markdown
    assert "| 2.10 | 61.00 |" in markdown and "| 64.00 ± 4.24 |" in markdown


def test_single_seed_group_has_no_std(tmp_path: Path) -> None:
    write_job(tmp_path, 0, ["seed=0"], fake_metrics(0.5, 0.5, 0))
    (group,) = seed_groups(read_sweep(tmp_path))
    assert group.seeds == [0] and math.isnan(group.std["val/acc_best"])


def test_the_multirun_callback_summarizes_around_an_unreadable_job(tmp_path: Path) -> None:
    """Issue 30: one damaged job made the callback raise (a UserWarning from Hydra), and the
    sweep ended with rc 0 and no summary files."""
    from hydra.core.utils import JobReturn, JobStatus
    from hydra.types import RunMode

    from fmnist.results.sweep import SweepSummary

    write_job(tmp_path, 0, ["seed=0"], {**fake_metrics(0.8, 0.8, 0), "test/acc": "93.7%"})
    write_job(tmp_path, 1, ["seed=1"], {**fake_metrics(0.8, 0.8, 1), "val/acc_best": float("nan")})
    write_job(tmp_path, 2, ["seed=2"], None)
    (tmp_path / "2" / ".hydra" / "config.yaml").write_text("seed: [2\n")  # not YAML
    write_job(tmp_path, 3, ["seed=3"], fake_metrics(0.7, 0.75, 3))
    hydra = {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(tmp_path)},
             "runtime": {"output_dir": str(tmp_path / "3")}}  # fmt: skip
    SweepSummary().on_job_end(OmegaConf.create({"hydra": hydra}), JobReturn(JobStatus.COMPLETED))
    rows = {r["job"]: r for r in csv.DictReader((tmp_path / "summary.csv").open())}
    assert rows["3"]["status"] == "completed" and float(rows["3"]["test/acc"]) == 0.75
    assert [rows[j]["status"] for j in "012"] == ["unreadable"] * 3
    assert rows["0"]["error"] == "metrics.json: test/acc is '93.7%', not a number"
    assert rows["1"]["error"].startswith("metrics.json is not JSON (NaN is not a JSON number")
    assert rows["2"]["error"].startswith(".hydra/config.yaml is not YAML (")
    markdown = (tmp_path / "summary.md").read_text()
    assert "1 of 4 jobs completed" in markdown and "- job 2 unreadable: .hydra/config" in markdown
    (group,) = list(csv.DictReader((tmp_path / "seed_groups.csv").open()))
    assert group["seeds"] == "3" and float(group["test/acc_mean"]) == 0.75


def run_sweep(sweep_dir: Path, data_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python train.py -m`` as a user runs it, outputs under ``sweep_dir`` (``tests/`` on
    the path, for the callbacks of fault_injection.py)."""
    command = [sys.executable, "train.py", "-m", *TINY_OVERRIDES, *SMALL, f"data.root={data_dir}",
               f"paths.log_dir={sweep_dir.parent / 'logs'}", f"hydra.sweep.dir={sweep_dir}",
               *overrides]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_grid_sweep_summary_failures_and_rerun(tmp_path: Path, fake_data_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    grid = ["seed=0,1", "model.filters=[4],[]"]  # 4 jobs; the two with filters=[] fail
    first = run_sweep(sweep, fake_data_dir, *grid)
    assert first.returncode == 1, first.stderr[-3000:]  # a job failed: Hydra says so...
    assert "Sweep summary" in first.stdout  # ...and the summary is still printed
    job_dirs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert job_dirs == ["0", "1", "2", "3"]  # one directory per job

    def job_overrides() -> dict[str, list[str]]:
        return {d: list(OmegaConf.load(sweep / d / ".hydra/overrides.yaml")) for d in job_dirs}

    overrides = job_overrides()
    ok = [d for d in job_dirs if "model.filters=[4]" in overrides[d]]
    failed = [d for d in job_dirs if "model.filters=[]" in overrides[d]]
    assert len(ok) == len(failed) == 2

    rows = {r["job"]: r for r in csv.DictReader((sweep / "summary.csv").open())}
    for job in ok:
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert rows[job]["status"] == "completed"
        assert float(rows[job]["val/acc_best"]) == pytest.approx(metrics["val/acc_best"])
        assert float(rows[job]["test/acc"]) == pytest.approx(metrics["test/acc"])
        assert float(rows[job]["test/f1_macro"]) == pytest.approx(metrics["test/f1_macro"])
        assert int(rows[job]["parameters"]) == metrics["parameters"]
        assert float(rows[job]["train_time_s"]) == metrics["train_time_s"]
        assert f"seed={rows[job]['seed']}" in overrides[job]
    for job in failed:
        assert rows[job]["status"] == "failed"
        assert "model.filters=[]: value should have at least 1 item" in rows[job]["error"]
    (group,) = list(csv.DictReader((sweep / "seed_groups.csv").open()))
    accs = [float(rows[j]["test/acc"]) for j in ok]
    assert group["n"] == "2" and group["overrides"] == "model.filters=[4]"
    assert float(group["test/acc_std"]) == pytest.approx(np.std(accs, ddof=1))

    # An interrupted sweep: the second job never finished. The same command finishes only it.
    kept, redo = ok
    kept_metrics = (sweep / kept / "metrics.json").read_text()
    (sweep / redo / "metrics.json").unlink()
    again = run_sweep(sweep, fake_data_dir, *grid)
    assert again.returncode == 1
    assert (sweep / kept / "metrics.json").read_text() == kept_metrics  # reused
    assert "Reusing" in (sweep / kept / "train.log").read_text()
    assert (sweep / redo / "metrics.json").exists()  # trained again
    assert "Reusing" not in (sweep / redo / "train.log").read_text()
    assert job_overrides() == overrides  # same job number, same overrides
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["completed", "completed", "failed", "failed"]


def test_a_rerun_sweep_resumes_its_interrupted_job_from_its_checkpoint(
    tmp_path: Path, fake_data_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    # Two jobs that train the same model (without a logger, the logging interval changes
    # nothing): job 0 is the uninterrupted twin of job 1, which SIGKILL stops mid-epoch 1.
    command = ["trainer.max_epochs=2", "model.dropout=0.3", "trainer.log_every_n_steps=50,49",
               "+callbacks.kill._target_=fault_injection.KillAt", "+callbacks.kill.epoch=1",
               "+callbacks.kill.batch=4", "+callbacks.kill.job=1",
               f"+callbacks.kill.once={tmp_path / 'killed'}"]  # fmt: skip
    first = run_sweep(sweep, fake_data_dir, *command)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert (sweep / "0" / "metrics.json").is_file() and not (sweep / "1" / "metrics.json").exists()
    last = sweep / "1" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # epoch 1 was half done

    again = run_sweep(sweep, fake_data_dir, *command)  # the same command, not told to resume
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Reusing" in (sweep / "0" / "train.log").read_text()
    resuming = f"Resuming the run in {sweep / '1'} from {last}"
    assert resuming in (sweep / "1" / "train.log").read_text()
    twin, resumed = (json.loads((sweep / job / "metrics.json").read_text()) for job in "01")
    assert resumed["epochs"] == twin["epochs"] == 2
    assert {k: v for k, v in resumed.items() if k.startswith("test/")} == {
        k: v for k, v in twin.items() if k.startswith("test/")
    }  # bit for bit: same data order, dropout and one-cycle schedule as without the kill
    assert resumed["val/acc_best"] == twin["val/acc_best"]
    assert resumed["confusion_matrix"] == twin["confusion_matrix"]
    weights = [torch.load(sweep / job / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
               for job in "01"]  # fmt: skip
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
    reason="Optuna sweeper not installed: pip install -e .[sweep]",
)
def test_optuna_search_tiny_budget(tmp_path: Path, fake_data_dir: Path, hydra_sweep_runner):
    overrides = [*TINY_OVERRIDES, *SMALL, f"data.root={fake_data_dir}",
                 f"paths.log_dir={tmp_path / 'logs'}", "hparams_search=optuna",
                 "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1",
                 "hydra.job.chdir=false",
                 "model.filters=choice([4],[6])"]  # fmt: skip
    from fmnist.cli import run_reporting_errors
    from fmnist.training.run import train

    def task(cfg):  # what fmnist.cli.train_main does
        return run_reporting_errors(train, cfg)["monitor"]["best"]

    sweep = tmp_path / "optuna"
    conf = str(CONF_DIR)
    with hydra_sweep_runner(str(ROOT / "train.py"), None, task, conf, "train", overrides, sweep):
        # (read inside the with: the runner deletes its directory on exit)
        jobs = read_sweep(sweep)
        results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert [j.status for j in jobs] == ["completed"] * 2
    assert results.best_value == pytest.approx(jobs[0].scores["val/acc_best"])
    lrs = {o for j in jobs for o in j.overrides if o.startswith("optimizer.lr=")}
    assert len(lrs) == 2  # two sampled learning rates, each a job with its own directory
    filters = {o for j in jobs for o in j.overrides if o.startswith("model.filters=")}
    assert filters <= {"model.filters=[4]", "model.filters=[6]"}


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
    reason="Optuna sweeper not installed: pip install -e .[sweep]",
)
def test_an_optuna_search_stored_in_sqlite_resumes(
    tmp_path: Path, fake_data_dir, hydra_sweep_runner
):
    import optuna

    from fmnist.cli import run_reporting_errors
    from fmnist.training.run import train

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    overrides = [*TINY_OVERRIDES, *SMALL, f"data.root={fake_data_dir}",
                 f"paths.log_dir={tmp_path / 'logs'}", "hparams_search=optuna",
                 f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=tiny",
                 "hydra.sweeper.sampler.n_startup_trials=1", "hydra.job.chdir=false",
                 "model.filters=choice([4],[6])"]  # fmt: skip

    def task(cfg):  # what fmnist.cli.train_main does
        return run_reporting_errors(train, cfg)["monitor"]["best"]

    def search(name: str, *more: str) -> tuple[list[float], float]:
        """Scores of the search's jobs, and the best value it reports for the study."""
        sweep, args = tmp_path / name, [*overrides, *more]
        with hydra_sweep_runner(str(ROOT / "train.py"), None, task, str(CONF_DIR), "train",
                                args, sweep):  # fmt: skip
            jobs = read_sweep(sweep)
            best = OmegaConf.load(sweep / "optimization_results.yaml").best_value
        return [j.scores["val/acc_best"] for j in jobs], best

    first, _ = search("first", "hydra.sweeper.n_trials=2")
    # Stopped, then started again: the study goes on from its two trials (a new sampler seed,
    # or the seeded random start would draw the first run's parameters again).
    second, best = search("second", "hydra.sweeper.n_trials=1", "hydra.sweeper.sampler.seed=1")
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert sorted(t.value for t in trials) == sorted(first + second)
    assert best == max(first + second)  # the best of the whole study, both runs
    lrs = [t.params["optimizer.lr"] for t in trials]
    assert len(set(lrs)) == 3


def test_launcher_and_search_configs_compose() -> None:
    from hydra import compose, initialize_config_dir

    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher",
        reason="the slurm extra is not installed (pip install -e .[slurm]; make test installs it)",
    )

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
            return_hydra_config=True,
        )
        assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
        assert (cfg.hydra.launcher.nodes, cfg.hydra.launcher.tasks_per_node) == (2, 4)
        assert cfg.hydra.launcher.name == "train"  # the SLURM job: task_name, not the module
        assert cfg.trainer.strategy == "ddp"
        cfg = compose("train", ["trainer=ddp_cpu"])
        assert (cfg.trainer.accelerator, cfg.trainer.devices) == ("cpu", 2)
        cfg = compose("train", ["hydra/launcher=parallel"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
        cfg = compose("train", ["hparams_search=optuna"], return_hydra_config=True)
        assert cfg.hydra.sweeper.direction == "maximize"
        assert set(cfg.hydra.sweeper.params) == {
            "optimizer.lr", "optimizer.weight_decay", "model.dropout", "model.filters",
            "data.batch_size",
        }  # fmt: skip


#: What sets a preset's training cost: a per-preset search must leave all of it alone.
BUDGET_KEYS = ("model.filters", "model.convs_per_block", "data.batch_size", "trainer.max_steps",
               "trainer.max_epochs")  # fmt: skip


@pytest.mark.parametrize("preset", ["speedrun", "quick", "default", "cpu_best"])
def test_a_preset_search_tunes_its_preset_at_a_fixed_budget_on_validation(preset: str) -> None:
    from hydra import compose, initialize_config_dir

    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e .[sweep]")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        search = compose("train", [f"hparams_search={preset}"], return_hydra_config=True)
        plain = compose("train", [] if preset == "default" else [f"experiment={preset}"])
    assert search.hydra.runtime.choices.experiment == (None if preset == "default" else preset)
    assert not search.test and search.trainer.get("limit_val_batches", 1.0) == 1.0  # val decides
    assert search.data.val_size > 0  # a preset that trains on all 60,000 still holds out for it
    assert search.monitor.startswith("val/") and search.hydra.sweeper.direction == "maximize"
    params = set(search.hydra.sweeper.params)
    assert params and not params & set(BUDGET_KEYS)
    for key in BUDGET_KEYS:
        assert OmegaConf.select(search, key) == OmegaConf.select(plain, key), key
    for key in params:  # every searched key exists in the preset (a typo would add a new one)
        assert OmegaConf.select(plain, key) is not None, key
