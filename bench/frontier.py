"""(6) The CPU frontier: every preset of ``bench/targets.py`` over its seeds, against its target.

Per run: test accuracy, fit time (``train()``'s), loop time, the whole command's wall time
(compose + fit + test + callbacks, in this process: Python's start-up and imports, a few
seconds, are not in it) and the images trained. Per preset: mean +- std and min accuracy,
median time with its min-max spread, whether the targets are met, training FLOPs per image
and the achieved GFLOP/s (over the training loop's time) as a share of this machine's matmul
peak, measured in the same run.
Each preset runs under the load guard (repeated once if it started on a busy machine).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from bench.context import Context, measure_presets, train_timed
from bench.figure import frontier_figure
from bench.flops import matmul_peak_gflops, preset_flops_per_image
from bench.targets import KERAS_REFERENCE, PRESETS, Preset, Reference, normalized
from fmnist.hardware import cpu_flags, has_bf16_hardware

#: --tiny: three steps of every preset, one epoch with validation where it has one; without
#: the analysis callbacks and logger (the callbacks and full parts run those in tiny mode).
TINY_OVERRIDES = [
    "trainer.max_epochs=1",
    "++trainer.max_steps=-1",
    "++trainer.limit_train_batches=3",
    "callbacks=none",
    "logger=none",
]
FIGURE = "frontier.png"


def machine_peak(tiny: bool) -> dict[str, float | None]:
    """fp32 matmul peak GFLOP/s, and bf16's where the CPU does bf16 in hardware (elsewhere
    bf16 is not used)."""
    n, repeats = (512, 2) if tiny else (2048, 5)
    bf16 = matmul_peak_gflops(torch.bfloat16, n, repeats) if has_bf16_hardware() else None
    return {"fp32": matmul_peak_gflops(torch.float32, n, repeats), "bf16": bf16, "n": n}


def higher_peak(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The higher of two peak readings, each kind apart: a busy moment halves one reading,
    which would flatter every time normalized by it."""
    best = {k: max(v, after[k]) if v is not None else None for k, v in before.items() if k != "n"}
    return {**best, "n": before["n"], "fp32_before": before["fp32"], "fp32_after": after["fp32"]}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def one_run(ctx: Context, name: str, seed: int) -> tuple[dict[str, Any], DictConfig]:
    """One seed of a preset as ``train.py`` runs it; wall time includes composing."""
    start = time.perf_counter()
    tiny = TINY_OVERRIDES if ctx.tiny else []
    overrides = PRESETS[name].overrides
    cfg = ctx.compose(*overrides, f"seed={seed}", *tiny, name=f"frontier-{name}-s{seed}")
    run = {"seed": seed, **train_timed(cfg)}
    run["wall_s"] = round(time.perf_counter() - start, 3)
    return run, cfg


def summarize(preset: Preset, runs: list[dict[str, Any]], peak_fp32: float) -> dict[str, Any]:
    """Accuracy and time over the seeds, judged against the preset's targets; times also
    normalized to the reference peak (``normalized``: the same keys)."""
    accs = [r["test_acc"] for r in runs]
    mean = statistics.mean(accs)
    by_seed = {r["seed"]: r["test_acc"] for r in runs}
    every_seed = min(accs) >= preset.min_acc and all(
        by_seed.get(seed, 1.0) >= acc for seed, acc in preset.seed_acc
    )
    acc_met = every_seed and mean >= (preset.min_mean_acc or 0.0)
    keys = ("fit_s", "wall_s", "loop_s")
    times = {key: spread([r[key] for r in runs]) for key in keys}
    scaled = {key: {k: normalized(v, peak_fp32) for k, v in times[key].items()} for key in keys}
    median = scaled[preset.time]["median"]
    return {
        "acc_mean": mean,
        "acc_std": statistics.stdev(accs) if len(accs) > 1 else None,
        "acc_min": min(accs),
        **times,
        "normalized": scaled,
        "every_seed_reached_acc": every_seed,
        "acc_met": acc_met,
        "time_met": median <= preset.max_s,
        "stretch_met": None if preset.stretch_s is None else median <= preset.stretch_s,
        "met": acc_met and median <= preset.max_s,
    }


def run_preset(ctx: Context, name: str, seeds: list[int]) -> dict[str, Any]:
    """Every seed of one preset, summarized, with its FLOPs and share of the machine's peak
    (measured before and after the preset, the higher kept)."""
    preset = PRESETS[name]
    runs, cfg = [], None
    before = machine_peak(ctx.tiny)
    for seed in seeds:
        run, cfg = one_run(ctx, name, seed)
        runs.append(run)
    peak = higher_peak(before, machine_peak(ctx.tiny))
    precision = str(cfg.trainer.precision)
    flops = preset_flops_per_image(cfg)
    for run in runs:  # over the loop: fit's setup and after-fit analysis callbacks train nothing
        run["gflops"] = flops * run["images"] / run["loop_s"] / 1e9
    peak_used = peak["bf16"] if "bf16" in precision and peak["bf16"] else peak["fp32"]
    gflops = statistics.median(r["gflops"] for r in runs)
    return {
        "command": preset.command,
        "seeds": seeds,
        "target": {k: v for k, v in asdict(preset).items() if k not in ("overrides", "seeds")},
        "precision": precision,
        "runs": runs,
        **summarize(preset, runs, peak["fp32"]),
        "flops_per_image": flops,
        "gflops": gflops,
        "peak": peak,
        "peak_gflops": peak_used,
        "peak_share": gflops / peak_used,
    }


def frontier(ctx: Context) -> dict[str, Any]:
    """Every preset (or those of ``--presets``), merged with presets measured earlier."""
    measured = measure_presets(
        ctx, ctx.presets or dict.fromkeys(PRESETS), "frontier preset", run_preset
    )
    earlier = ctx.previous.get("frontier", {}).get("presets", {})
    presets = {n: measured.get(n) or earlier[n] for n in PRESETS if n in measured or n in earlier}
    reference = KERAS_REFERENCE["amx_bf16" in cpu_flags()]
    latest = list(measured.values())[-1]["peak"] if measured else machine_peak(ctx.tiny)
    return {
        "peak_gflops": latest,
        "reference": asdict(reference),
        "presets": presets,
        "figure": FIGURE,
    }


def draw(part: dict[str, Any], out: Path) -> None:
    """The frontier figure of a results file's frontier part, next to the results."""
    # Results written before the reference recorded its machine's peak have no such key.
    reference = Reference(**{"peak_gflops": None, **part["reference"]})
    frontier_figure(part["presets"], reference, out / part["figure"])
