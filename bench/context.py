"""What every benchmark part shares: the :class:`Context` that composes run configs for the
mode (tiny or real), and :func:`train_timed`, one ``train(cfg)`` with its times."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.targets import PRESETS
from bench.timing import LoadGuard
from fmnist.config import CONF_DIR
from fmnist.training.run import train


@dataclass
class Context:
    """What every part needs: where runs write, the overrides of the mode and trainer."""

    workdir: Path
    tiny: bool
    base_overrides: list[str] = field(default_factory=list)  # data location, trainer
    seeds: list[int] = field(default_factory=lambda: [0])  # the speedrun part's
    presets: dict[str, list[int] | None] = field(default_factory=dict)  # frontier; {}: all
    out: Path = Path(".")  # where results (and the frontier figure) go
    previous: dict[str, Any] = field(default_factory=dict)  # parts kept from the last results
    guard: LoadGuard = field(default_factory=LoadGuard)
    ablations: list[str] = field(default_factory=list)  # ablation tables; []: all
    runs: int = 0
    ckpt: str | None = None  # the photos part's checkpoint (--ckpt)

    def compose(self, *overrides: str, name: str = "", folder: str = "") -> DictConfig:
        """A run config as ``train.py OVERRIDES`` composes it, writing under ``workdir`` in a
        folder numbered in run order (and named ``name`` where given, e.g. frontier-default-s0),
        or in ``workdir / folder`` where that is given (a run found again by its name)."""
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[*self.base_overrides, *overrides])
        GlobalHydra.instance().clear()
        self.runs += 1
        out = self.workdir / (folder or "-".join(filter(None, [f"run{self.runs:03d}", name])))
        with open_dict(cfg):
            cfg.paths.output_dir = str(out)
            cfg.paths.log_dir = str(out / "logs")
        # Where Hydra's own runs keep them: the leaderboard names a run by its overrides.
        (out / ".hydra").mkdir(parents=True, exist_ok=True)
        recorded = OmegaConf.create([*self.base_overrides, *overrides])
        OmegaConf.save(recorded, out / ".hydra" / "overrides.yaml")
        return cfg

    def steps(self, full: int) -> int:
        return 3 if self.tiny else full


def metric(metrics: Mapping[str, Any], name: str) -> Any:
    """A value of ``train()``'s result by its logged name (``test/acc``); None when absent."""
    return metrics.get(name)


def add_fit_timer(cfg: DictConfig) -> Path:
    """Adds the loop timer to the run's callbacks (so to its saved config); its file."""
    timer_file = Path(cfg.paths.output_dir) / "fit_loop.json"
    with open_dict(cfg):
        if not cfg.get("callbacks"):
            cfg.callbacks = {}
        cfg.callbacks.bench_timer = {"_target_": "bench.timing.FitTimer", "path": str(timer_file)}
    return timer_file


def train_timed(cfg: DictConfig) -> dict[str, Any]:
    """``train(cfg)`` with a loop timer: loop time (no data loading, no test), fit time (as
    ``train()`` reports it), wall time of the call and the images trained."""
    timer_file = add_fit_timer(cfg)
    start = time.perf_counter()
    metrics = train(cfg)
    wall = time.perf_counter() - start
    loop = json.loads(timer_file.read_text())
    return {
        "loop_s": round(loop["loop_s"], 3),
        "steps": loop["steps"],
        "images": loop["images"],
        "fit_s": metric(metrics, "train_time_s"),
        "wall_s": round(wall, 3),
        "test_acc": metric(metrics, "test/acc"),
    }


def measure_presets(
    ctx: Context,
    chosen: Mapping[str, list[int] | None],
    label: str,
    measure: Callable[[Context, str, list[int]], dict[str, Any]],
) -> dict[str, Any]:
    """``measure`` of each chosen preset over its seeds (those given, else the preset's own;
    tiny: its first), under the load guard, each with the guard's load record."""
    measured = {}
    for name, seeds in chosen.items():
        print(f"== {label}: {name}", flush=True)
        seeds = seeds or list(PRESETS[name].seeds[:1] if ctx.tiny else PRESETS[name].seeds)
        result, load = ctx.guard.run(lambda n=name, s=seeds: measure(ctx, n, s))
        measured[name] = {**result, "load": load}
    return measured
