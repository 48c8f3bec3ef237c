"""The results as the Markdown the README shows: one row writer per part, then the tables.

Each writer takes its part's results and returns rows of (measure, result, target); a part
without a writer gets none. Every part also gets a row with the load average around it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.targets import REFERENCE_PEAK

Row = tuple[str, str, str]


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def speedrun_rows(s: dict[str, Any]) -> list[Row]:
    seeds = ", ".join(pct(r["test_acc"]) for r in s["runs"])
    slowest = max(s["runs"], key=lambda r: r["fit_s"])
    return [
        (
            f"test accuracy, seeds {[r['seed'] for r in s['runs']]}",
            seeds,
            f">= {pct(s['target_acc'])}",
        ),
        (
            "training time (loop; with data loading): mean, and slowest (the first seed: "
            "cold caches)",
            f"{s['loop_s_mean']:.1f} s; {s['fit_s_mean']:.1f} s. "
            f"Slowest {slowest['loop_s']:.1f} s; {slowest['fit_s']:.1f} s",
            f"<= {s['target_s']:.0f} s",
        ),
        ("every seed reached the target", "yes" if s["all_reached_target"] else "no", ""),
    ]


def overhead_rows(o: dict[str, Any]) -> list[Row]:
    return [
        (
            f"train() vs plain PyTorch loop, {o['steps']} steps",
            f"{o['ratio']:.3f}x ({sum(o['lightning_loop_s']):.1f} s vs "
            f"{sum(o['plain_loop_s']):.1f} s)",
            f"<= {o['target_ratio']}x",
        )
    ]


def data_rows(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"batches/s, batch {d['batch_size']}, {d['augmentation']}: DataLoader",
            f"{d['dataloader_batches_per_s']:.0f}",
            "",
        ),
        (
            "batches/s, same, device-resident batches",
            f"{d['device_batches_batches_per_s']:.0f}",
            "",
        ),
        ("model steps/s (with that data)", f"{d['model_steps_per_s']:.1f}", ""),
        ("data share of a training step", pct(d["data_share_of_step"]), "small"),
    ]


def callbacks_rows(c: dict[str, Any]) -> list[Row]:
    return [
        (
            f"callbacks={name} vs none: added time (1 epoch of the default model; "
            f"share of a {c['default_epochs']}-epoch default run)",
            f"+{r['added_s']:.1f} s ({pct(r['added_share_of_default_run'])})",
            f"<= {pct(c['target_share'])}",
        )
        for name, r in c["runs"].items()
        if name != "none"
    ]


def full_rows(f: dict[str, Any]) -> list[Row]:
    rows = []
    for name, r in f["runs"].items():
        command = r["command"].strip()
        rows.append(
            (
                f"`{command}` ({r['epochs']} epochs): test acc, time (in all: data, fit, test, "
                "analysis callbacks)",
                f"{pct(r['test_acc'])}, {r['fit_s']:.0f} s fit, {r['wall_s']:.0f} s in all",
                ">= 93.0% in 10 min" if name == "default" else ">= 91.0%",
            )
        )
        if "importance" in r:
            i = r["importance"]
            rows.append(
                (
                    f"`{command}`: permutation importance after fitting ({i['n_samples']} "
                    f"{i['split']} images, every conv channel and the dense layer, "
                    f"{i['n_repeats']} repeats)",
                    f"{i['seconds']:.1f} s",
                    "< 60 s",
                )
            )
    return rows


def load_row(load: dict[str, Any] | None) -> list[Row]:
    """The 1-minute load average before and after a piece, and whether it was repeated."""
    if not load or load.get("before") is None:
        return []
    text = f"{load['before'][0]:.2f} -> {load['after'][0]:.2f}"
    if load.get("waited_s"):
        text += f" (waited {load['waited_s']:.0f} s)"
    if load["repeated"]:
        text += f"; repeated: {load['first_attempt']['before'][0]:.2f} at the first start"
    return [("load average (1 min) at start -> end", text, f"<= {load['limit']} at start")]


def kept_row(part: dict[str, Any]) -> list[Row]:
    """When a part kept from an earlier results file was measured: its numbers may come from
    another machine than the header's."""
    stamp = part.get("measured")
    when = f"{stamp['date']} on {stamp['cpu']}" if stamp else "by an earlier command (unstamped)"
    return [("kept from an earlier command, measured", when, "compare within one machine")]


ROW_WRITERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "speedrun": speedrun_rows,
    "overhead": overhead_rows,
    "data": data_rows,
    "callbacks": callbacks_rows,
    "full": full_rows,
}


def machine_words(m: dict[str, Any]) -> str:
    """``AMD EPYC (2 cores, no GPU)``: the machine a results file was measured on."""
    return f"{m['cpu']} ({m['cores']} cores" + (f", {m['gpu']})" if m["gpu"] else ", no GPU)")


def header(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (
        f"Measured {results['date']} on {machine_words(m)}"
        + f", torch {m['torch']}, Lightning {m['lightning']}"
        + (" — **tiny mode: synthetic data, timings meaningless**" if results["tiny"] else "")
        + f". Command: `{results['command']}`."
    )


def _seconds(t: dict[str, float]) -> str:
    return f"{t['median']:.1f} s [{t['min']:.1f}-{t['max']:.1f}]"


def _target(t: dict[str, Any]) -> str:
    acc = f">= {pct(t['min_acc'])} each"
    if t["min_mean_acc"] is not None:
        acc = f">= {pct(t['min_mean_acc'])} mean, {acc}"
    acc += "".join(f", seed {seed} >= {pct(a)}" for seed, a in t.get("seed_acc") or [])
    stretch = f" (stretch {t['stretch_s']:.0f} s)" if t.get("stretch_s") else ""
    measure = "training" if t["time"] == "fit_s" else "whole command"
    return f"{acc}; <= {t['max_s']:.0f} s{stretch} of {measure}, normalized"


def normalized_times(p: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The preset's times normalized to the reference peak; a row kept from before the
    normalization (one peak reading per run) is normalized by the peak it recorded."""
    if "normalized" in p:
        return p["normalized"]
    scale = p["peak_gflops"] / REFERENCE_PEAK
    keys = ("fit_s", "wall_s")
    return {key: {k: v * scale for k, v in p[key].items()} for key in keys}


def _met(p: dict[str, Any]) -> str:
    if p["met"]:
        return "**yes**" + (", stretch too" if p["stretch_met"] else "")
    return "no: " + ", ".join(
        k for k, ok in (("accuracy", p["acc_met"]), ("time", p["time_met"])) if not ok
    )


def frontier_row(name: str, p: dict[str, Any]) -> str:
    """One preset: seeds, accuracy, times, target and verdict, FLOPs and share of peak."""
    std = "" if p["acc_std"] is None else f" ± {100 * p['acc_std']:.2f}"
    load = p.get("load") or {}
    start = "-" if load.get("before") is None else f"{load['before'][0]:.2f}"
    start += " (repeated)" if load.get("repeated") else ""
    scaled = normalized_times(p)
    fp32 = p.get("peak", {}).get("fp32", p["peak_gflops"])
    cells = [
        f"`{p['command']}`",
        ", ".join(map(str, p["seeds"])),
        f"{100 * p['acc_mean']:.2f}%{std} ({pct(p['acc_min'])})",
        f"**{_seconds(scaled['fit_s'])}** (raw {_seconds(p['fit_s'])} at {fp32:.0f})",
        f"**{_seconds(scaled['wall_s'])}** (raw {_seconds(p['wall_s'])})",
        _target(p["target"]),
        _met(p),
        f"{p['flops_per_image'] / 1e6:.1f} M",
        f"{p['gflops']:.1f} ({pct(p['peak_share'])} of {p['peak_gflops']:.1f}, {p['precision']})",
        start,
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def _reference_peak(ref: dict[str, Any]) -> str:
    if not ref.get("peak_gflops"):
        return " (its peak not recorded)"
    seconds = ref["time_s"] * ref["peak_gflops"] / REFERENCE_PEAK
    return f" at a {ref['peak_gflops']:.0f} GFLOP/s peak ({seconds:.0f} s normalized)"


def frontier_table(f: dict[str, Any]) -> list[str]:
    """The frontier: one row per preset, the machine's peak and the figure."""
    peak, ref = f["peak_gflops"], f["reference"]
    bf16 = f", bf16 {peak['bf16']:.1f}" if peak["bf16"] else " (no bf16 hardware: bf16 not used)"
    return [
        "",
        "The CPU frontier (`python -m bench.run --parts frontier`). Matmul peak of this machine, "
        "measured in the same run as each preset (its row shows the one it is compared with; "
        f"best of {peak['n']}x{peak['n']} matmuls), in the latest run: fp32 "
        f"{peak['fp32']:.1f} GFLOP/s{bf16}. Achieved GFLOP/s: training FLOPs per image "
        "(forward + backward, counted by `FlopCounterMode`) x images trained / time of the "
        "training loop (fit without its setup and after-fit analysis), median over seeds. "
        f"Reference: {ref['label']}, {pct(ref['acc'])} after {ref['time_s']:.0f} s on "
        f"{ref['cpu']}{_reference_peak(ref)}.",
        "",
        f"![Test accuracy against training time]({f['figure']})",
        "",
        "Times are normalized to a 200 GFLOP/s fp32 matmul peak (`time x peak / 200`, the "
        "peak measured before and after each preset, the higher kept), with the raw seconds "
        "and that peak beside them.",
        "",
        "| Preset | Command | Seeds | Test accuracy: mean ± std (min) | Training (fit) time, "
        "normalized: median [min-max] | Whole command, normalized | Target | Met? | Training "
        "FLOPs/image | GFLOP/s (% of peak, precision) | Load at start |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(frontier_row(name, p) for name, p in f["presets"].items()),
    ]


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
        summaries = p["summary"].values()  # fp32, then bf16 (bench/precision.py)
        for s in summaries:
            each = ", ".join(f"{100 * a:.2f}" for a in s["test_acc"])
            cells.append(f"{100 * s['acc_mean']:.2f}% ({each})")
        cells += [f"{s['fit_s_median']:.1f} ({s['normalized_fit_s']:.1f})" for s in summaries]
        cells.append(f"{p['speedup_median']:.2f}x [{min(p['speedups']):.2f}-"
                     f"{max(p['speedups']):.2f}]")  # fmt: skip
        bf16 = p["peak"]["bf16"]  # None: no bf16 in hardware (not measured)
        cells.append(f"{p['peak']['fp32']:.0f} / " + (f"{bf16:.0f}" if bf16 else "-"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown tables the README shows."""
    lines = [header(results), "", "| Part | Measure | Result | Target |", "|---|---|---|---|"]
    for name, part in results["parts"].items():
        rows = ROW_WRITERS.get(name, lambda _: [])(part) + load_row(part.get("load"))
        if name not in results.get("parts_measured", results["parts"]):
            rows += kept_row(part)
        lines += [f"| {name} | {measure} | {value} | {target} |" for measure, value, target in rows]
    if "frontier" in results["parts"]:
        lines += frontier_table(results["parts"]["frontier"])
    if "precision" in results["parts"]:
        lines += precision_table(results["parts"]["precision"])
    return "\n".join(lines) + "\n"


def presets_table(results: dict[str, Any]) -> str:
    """What each preset reaches, in how long, on what machine: the README's short form of the
    frontier table (``bench/results.md`` has it whole, normalized times and FLOPs included)."""
    frontier = results["parts"]["frontier"]
    stamp = frontier.get("measured") or {"date": results["date"], "cpu": results["machine"]["cpu"]}
    same = stamp["cpu"] == results["machine"]["cpu"]  # a kept part records its CPU only
    lines = [
        f"Measured {stamp['date']} on {machine_words(results['machine']) if same else stamp['cpu']}"
        " by `python -m bench.run --parts frontier`; times are medians over the seeds, raw "
        "seconds on that machine.",
        "",
        "| Preset | Command | Test accuracy: mean ± std (min) | Seeds | Training | Whole command "
        "| Target met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in frontier["presets"].items():
        std = "" if p["acc_std"] is None else f" ± {100 * p['acc_std']:.2f}"
        cells = [
            name,
            f"`{p['command']}`",
            f"{100 * p['acc_mean']:.2f}%{std} ({pct(p['acc_min'])})",
            str(len(p["seeds"])),
            f"{p['fit_s']['median']:.0f} s",
            f"{p['wall_s']['median']:.0f} s",
            _met(p),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: The project's root: absolute paths in a recorded command are written relative to it.
ROOT = Path(__file__).resolve().parents[1]


def portable(arg: str) -> str:
    """An argument with an absolute path (alone or after ``key=``) made relative to the
    project, so a committed results file names no folder of the machine that wrote it."""
    key, sep, value = arg.rpartition("=")  # ("", "", arg) without one
    if not Path(value).is_absolute():
        return arg
    return f"{key}{sep}{os.path.relpath(value, ROOT)}"


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that produced a results file, as the user typed it (paths relative)."""
    args = argv if argv is not None else sys.argv[1:]
    return f"python -m {module} " + " ".join(portable(a) for a in args)


def write_results(
    out: Path, stem: str, results: dict[str, Any], to_markdown: Callable[[dict], str]
) -> None:
    """``<stem>.json`` and the ``<stem>.md`` the README quotes, written side by side, and the
    Markdown printed: every bench entry point ends this way."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    text = to_markdown(results)
    (out / f"{stem}.md").write_text(text)
    print(text)
