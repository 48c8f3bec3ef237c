"""The frontier figure: test accuracy against training time, one point per preset.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bench.report import normalized_times
from bench.targets import Reference


def _preset_point(ax: Any, name: str, p: dict[str, Any], color: str) -> None:
    """Mean +- std accuracy at the median normalized fit time with its min-max; the target
    faint (a whole-command target is drawn at its normalized whole-command time)."""
    t = normalized_times(p)["fit_s"]
    x, xerr = t["median"], [[t["median"] - t["min"]], [t["max"] - t["median"]]]
    y, yerr = 100 * p["acc_mean"], 100 * (p["acc_std"] or 0.0)
    label = f"{name} ({len(p['seeds'])} seed{'s' * (len(p['seeds']) > 1)})"
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color=color, capsize=3, label=label)
    target = p["target"]
    target_acc = target["min_mean_acc"] or target["min_acc"]
    ax.scatter(target["max_s"], 100 * target_acc, marker="*", s=140, color=color, alpha=0.3)


#: Time ticks in seconds, labelled as numbers (matplotlib's log axis writes 3x10^1 otherwise).
TIME_TICKS = (5, 10, 15, 30, 60, 90, 180, 300, 600, 1200, 1800, 3600, 7200)


def frontier_figure(presets: dict[str, dict[str, Any]], reference: Reference, path: Path) -> None:
    """Write the figure to ``path`` (PNG)."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, p) in enumerate(presets.items()):
        _preset_point(ax, name, p, f"C{i}")
    ax.scatter(
        reference.normalized_s or reference.time_s,
        100 * reference.acc,
        marker="D",
        color="black",
        label=f"{reference.label}\n({reference.cpu})",
    )
    ax.scatter([], [], marker="*", s=140, color="gray", alpha=0.3, label="target (same colour)")
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in TIME_TICKS if low <= t <= high]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(
        "training time, s, normalized to a 200 GFLOP/s fp32 peak (log scale; median, min-max)"
    )
    ax.set_ylabel("test accuracy, % (mean ± std over seeds)")
    ax.set_title("Fashion-MNIST on this CPU: accuracy against training time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    fig.savefig(path, dpi=120)
