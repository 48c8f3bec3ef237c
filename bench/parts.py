"""The benchmark's parts. Each takes a :class:`Context` and returns a JSON-ready dict.

Runs go through the same ``train(cfg)`` as ``train.py``, with configs composed by Hydra from
``conf/``; each part times what it compares in one process, one after the other.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.plain import build_parts, plain_training_loop
from bench.timing import synchronize
from fmnist.runs.config import CONF_DIR
from fmnist.training.run import train

#: The original study's test accuracy: the speedrun's target.
TARGET_ACC = 0.9103
TARGET_SPEEDRUN_S = 30.0
TARGET_OVERHEAD = 1.05


@dataclass
class Context:
    """What every part needs: where runs write, the overrides of the mode and trainer."""

    workdir: Path
    tiny: bool
    base_overrides: list[str] = field(default_factory=list)  # data location, trainer
    seeds: list[int] = field(default_factory=lambda: [0])
    runs: int = 0

    def compose(self, *overrides: str) -> DictConfig:
        """A run config as ``train.py OVERRIDES`` composes it, writing under ``workdir``."""
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[*self.base_overrides, *overrides])
        GlobalHydra.instance().clear()
        self.runs += 1
        out = self.workdir / f"run{self.runs:03d}"
        with open_dict(cfg):
            cfg.paths.output_dir = str(out)
            cfg.paths.log_dir = str(out / "logs")
        return cfg

    def steps(self, full: int) -> int:
        return 3 if self.tiny else full


def train_timed(cfg: DictConfig) -> dict[str, Any]:
    """``train(cfg)`` with a loop timer: loop time (no data loading, no test) and wall time."""
    timer_file = Path(cfg.paths.output_dir) / "fit_loop.json"
    with open_dict(cfg):
        if not cfg.get("callbacks"):
            cfg.callbacks = {}
        cfg.callbacks.bench_timer = {"_target_": "bench.timing.FitTimer", "path": str(timer_file)}
    start = time.perf_counter()
    metrics = train(cfg)
    wall = time.perf_counter() - start
    loop = json.loads(timer_file.read_text())
    return {
        "loop_s": round(loop["loop_s"], 3),
        "steps": loop["steps"],
        "fit_s": metrics["train_time_s"],
        "wall_s": round(wall, 3),
        "test_acc": metrics.get("test", {}).get("acc"),
    }


def speedrun(ctx: Context) -> dict[str, Any]:
    """(1) Time to accuracy: the fixed ``experiment=speedrun`` recipe, one run per seed."""
    extra = [f"trainer.max_steps={ctx.steps(430)}"] if ctx.tiny else []
    runs = []
    for seed in ctx.seeds:
        result = train_timed(ctx.compose("experiment=speedrun", f"seed={seed}", *extra))
        result["seed"] = seed
        result["reached_target"] = bool(result["test_acc"] >= TARGET_ACC)
        runs.append(result)
    accs, loops = [r["test_acc"] for r in runs], [r["loop_s"] for r in runs]
    return {
        "command": "python train.py experiment=speedrun seed=S",
        "target_acc": TARGET_ACC,
        "target_s": TARGET_SPEEDRUN_S,
        "runs": runs,
        "test_acc_mean": statistics.mean(accs),
        "test_acc_min": min(accs),
        "loop_s_mean": statistics.mean(loops),
        "fit_s_mean": statistics.mean(r["fit_s"] for r in runs),
        "all_reached_target": all(r["reached_target"] for r in runs),
    }


def overhead(ctx: Context) -> dict[str, Any]:
    """(2) Lightning's overhead: the speedrun's loop in ``train()`` vs in plain PyTorch.

    Alternates plain, Lightning, three times, so slow drifts of the machine hit both: on the
    2-core machine the same 120 steps varied by 20% from run to run.
    """
    steps = ctx.steps(200)
    overrides = ["experiment=speedrun", f"trainer.max_steps={steps}", "test=false"]
    plain, lightning = [], []
    for _ in range(3):
        plain.append(plain_training_loop(ctx.compose(*overrides), steps)["loop_s"])
        lightning.append(train_timed(ctx.compose(*overrides))["loop_s"])
    return {
        "steps": steps,
        "plain_loop_s": plain,
        "lightning_loop_s": lightning,
        "ratio": sum(lightning) / sum(plain),
        "target_ratio": TARGET_OVERHEAD,
    }


def _time_batches(cfg: DictConfig, batches: int, with_model: bool) -> float:
    """Seconds per training batch: loading + scale + augment + standardize (+ model step)."""
    datamodule, module = build_parts(cfg)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    loader = datamodule.train_dataloader()
    done, start = 0, 0.0
    while done < batches + 1:  # the first batch warms up and is not timed
        for images, labels in loader:
            if done == 1:
                synchronize()
                start = time.perf_counter()
            x = datamodule.standardize(datamodule.augment(datamodule.scale(images)))
            x = x.contiguous(memory_format=torch.channels_last)
            if with_model:
                loss = torch.nn.functional.cross_entropy(module(x), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            done += 1
            if done == batches + 1:
                break
    synchronize()
    return (time.perf_counter() - start) / batches


def data_pipeline(ctx: Context) -> dict[str, Any]:
    """(3) Batches/s of the data pipeline with every augmentation on, vs the model step."""
    batches = ctx.steps(60)
    augmented = ["experiment=speedrun", "data.crop_padding=2", "data.hflip=true"]
    augmented.append("data.erasing=0.5")
    result: dict[str, Any] = {"batches": batches, "augmentation": "crop 2 + flip + erasing 0.5"}
    for name, on_device in (("dataloader", "false"), ("device_batches", "true")):
        cfg = ctx.compose(*augmented, f"data.on_device={on_device}")
        result["batch_size"] = cfg.data.batch_size
        result[f"{name}_batches_per_s"] = 1 / _time_batches(cfg, batches, with_model=False)
    step_s = _time_batches(ctx.compose(*augmented), batches, with_model=True)
    result["model_steps_per_s"] = 1 / step_s
    result["data_share_of_step"] = result["device_batches_batches_per_s"] ** -1 / step_s
    return result


def callbacks_cost(ctx: Context) -> dict[str, Any]:
    """(4) The cost of each callbacks config (conf/callbacks/*.yaml) against ``none``.

    One epoch of the default model with validation and test, so callbacks that hook them
    (importance and activations run once, after fitting) are counted in full. The share of a
    whole default run is projected from that: the added seconds over the run's epochs.
    """
    names = sorted(p.stem for p in (CONF_DIR / "callbacks").glob("*.yaml"))
    names = ["none"] + [n for n in names if n != "none"]
    default_epochs = int(ctx.compose().trainer.max_epochs)
    common = ["trainer.max_epochs=1", "logger=tensorboard"]
    if ctx.tiny:
        common.append(f"++trainer.limit_train_batches={ctx.steps(0)}")
    runs = {name: train_timed(ctx.compose(*common, f"callbacks={name}")) for name in names}
    base = runs["none"]
    # A whole default run without callbacks: this run plus (epochs - 1) more training loops.
    default_run_s = base["wall_s"] + (default_epochs - 1) * base["loop_s"]
    for result in runs.values():
        result["added_s"] = result["wall_s"] - base["wall_s"]
        result["added_share_of_default_run"] = result["added_s"] / default_run_s
    return {"default_epochs": default_epochs, "runs": runs, "target_share": 0.10}


def full_runs(ctx: Context) -> dict[str, Any]:
    """(5) Slow: the default ``python train.py`` and ``experiment=seed``, as a user runs them."""
    extra = ["trainer.max_epochs=1", f"++trainer.limit_train_batches={ctx.steps(0)}"]
    runs = {}
    for name, overrides in (("default", []), ("seed", ["experiment=seed"])):
        cfg = ctx.compose(*overrides, *(extra if ctx.tiny else []))
        runs[name] = train_timed(cfg)
        runs[name]["command"] = "python train.py " + " ".join(overrides)
        importance = Path(cfg.paths.output_dir) / "importance.json"
        if importance.is_file():  # the PermutationImportance callback's own timing
            report = json.loads(importance.read_text())
            runs[name]["importance"] = {
                k: report[k] for k in ("seconds", "n_samples", "n_repeats", "split")
            }
        runs[name]["epochs"] = int(OmegaConf.select(cfg, "trainer.max_epochs"))
    return {"runs": runs}


PARTS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "speedrun": speedrun,
    "overhead": overhead,
    "data": data_pipeline,
    "callbacks": callbacks_cost,
    "full": full_runs,
}
#: Parts run when none are named: all but the slow one.
DEFAULT_PARTS = ("speedrun", "overhead", "data", "callbacks")

__all__ = ["DEFAULT_PARTS", "PARTS", "Context"]
