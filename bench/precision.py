"""(8) Precision: each preset trained in fp32 and in bf16-mixed, seed by seed, in one run.

The two precisions alternate (fp32 then bf16 on one seed, then the next seed), so a drift of
the VM hits both. Per preset: test accuracy of each precision over the seeds, median training
time, and the median of the per-seed time ratios fp32 / bf16 (a paired speed-up). This is the
measurement behind ``fmnist.hardware.cpu_precision``: `python -m bench.run --parts precision
--presets speedrun quick default:0`.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.context import Context, measure_presets, train_timed
from bench.frontier import TINY_OVERRIDES, higher_peak, machine_peak
from bench.targets import PRESETS, normalized

PRECISIONS = ("32-true", "bf16-mixed")


def compare_preset(ctx: Context, name: str, seeds: list[int]) -> dict[str, Any]:
    """Both precisions on every seed of one preset, alternating."""
    before = machine_peak(ctx.tiny)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PRECISIONS}
    for seed in seeds:
        for precision in PRECISIONS:
            cfg = ctx.compose(*PRESETS[name].overrides, f"seed={seed}",
                              f"trainer.precision={precision}",
                              *(TINY_OVERRIDES if ctx.tiny else []),
                              name=f"precision-{name}-{precision}-s{seed}")  # fmt: skip
            runs[precision].append({"seed": seed, **train_timed(cfg)})
    peak = higher_peak(before, machine_peak(ctx.tiny))
    summary = {}
    for precision, done in runs.items():
        fit = statistics.median(r["fit_s"] for r in done)
        summary[precision] = {
            "test_acc": [r["test_acc"] for r in done],
            "acc_mean": statistics.mean(r["test_acc"] for r in done),
            "fit_s": [r["fit_s"] for r in done],
            "fit_s_median": fit,
            "normalized_fit_s": normalized(fit, peak["fp32"]),
        }
    ratios = [a["fit_s"] / b["fit_s"] for a, b in zip(*runs.values(), strict=True)]
    return {"seeds": seeds, "runs": runs, "summary": summary, "peak": peak,
            "speedup_median": statistics.median(ratios), "speedups": ratios}  # fmt: skip


def precision(ctx: Context) -> dict[str, Any]:
    """The presets of ``--presets`` (default: speedrun and quick), merged with earlier ones."""
    chosen = ctx.presets or {"speedrun": None, "quick": None}
    measured = measure_presets(ctx, chosen, "precision", compare_preset)
    earlier = ctx.previous.get("precision", {}).get("presets", {})
    return {"presets": {**earlier, **measured}}
