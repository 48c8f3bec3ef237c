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

import torch

from bench.context import Context, measure_presets, train_timed
from bench.flops import matmul_peak_gflops
from bench.targets import PRESETS, normalized

PRECISIONS = ("32-true", "bf16-mixed")
#: --tiny: a few steps of each preset, without the after-fit analysis.
TINY_OVERRIDES = ["trainer.max_epochs=1", "++trainer.max_steps=-1",
                  "++trainer.limit_train_batches=3", "callbacks=none", "logger=none"]  # fmt: skip


def peaks(tiny: bool) -> dict[str, float]:
    """fp32 and bf16 matmul peaks (GFLOP/s): what the CPU's bf16 hardware gives a plain GEMM."""
    n, repeats = (256, 2) if tiny else (2048, 5)
    return {
        "fp32": matmul_peak_gflops(torch.float32, n, repeats),
        "bf16": matmul_peak_gflops(torch.bfloat16, n, repeats),
    }


def compare_preset(ctx: Context, name: str, seeds: list[int]) -> dict[str, Any]:
    """Both precisions on every seed of one preset, alternating."""
    before = peaks(ctx.tiny)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PRECISIONS}
    for seed in seeds:
        for precision in PRECISIONS:
            cfg = ctx.compose(*PRESETS[name].overrides, f"seed={seed}",
                              f"trainer.precision={precision}",
                              *(TINY_OVERRIDES if ctx.tiny else []),
                              name=f"precision-{name}-{precision}-s{seed}")  # fmt: skip
            runs[precision].append({"seed": seed, **train_timed(cfg)})
    after = peaks(ctx.tiny)
    peak = {k: max(before[k], after[k]) for k in before}
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


def precision_table(part: dict[str, Any]) -> list[str]:
    """One row per preset: accuracy and time in each precision, and the paired speed-up."""
    lines = ["", "Precision (`python -m bench.run --parts precision`): each preset in fp32 and in "
             "bf16-mixed, alternating seed by seed in one run; times are training (fit) seconds, "
             "median over the seeds, normalized to a 200 GFLOP/s fp32 peak in brackets.", "",
             "| Preset | Seeds | fp32 test acc (mean; each) | bf16 test acc (mean; each) | "
             "fp32 fit s | bf16 fit s | speed-up fp32/bf16: median [min-max] | matmul peak "
             "fp32 / bf16 GFLOP/s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, p in part["presets"].items():
        cells = [name, ", ".join(map(str, p["seeds"]))]
        for key in PRECISIONS:
            s = p["summary"][key]
            each = ", ".join(f"{100 * a:.2f}" for a in s["test_acc"])
            cells.append(f"{100 * s['acc_mean']:.2f}% ({each})")
        for key in PRECISIONS:
            s = p["summary"][key]
            cells.append(f"{s['fit_s_median']:.1f} ({s['normalized_fit_s']:.1f})")
        cells.append(f"{p['speedup_median']:.2f}x [{min(p['speedups']):.2f}-"
                     f"{max(p['speedups']):.2f}]")  # fmt: skip
        cells.append(f"{p['peak']['fp32']:.0f} / {p['peak']['bf16']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
