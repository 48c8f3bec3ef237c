"""(7) Ablations, in the style of airbench's table: one baseline recipe, techniques added in
turn at a fixed training budget, each *kept* only when it raises the mean validation accuracy
over the seeds (greedy forward selection). The test set never decides: its accuracy is
reported beside, measured once per run on the final weights.

`python -m bench.run --parts ablations [--ablation NAME]` runs one table of :data:`TABLES`
and writes ``docs/ablations.md`` from every table measured so far (``bench/results.json``).
A run whose directory (under ``--keep-runs``) already holds its ``metrics.json`` is read back,
not trained again, so an interrupted table resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.context import Context, add_fit_timer, train_timed
from bench.flops import matmul_peak_gflops, preset_flops_per_image
from bench.synthetic import SYNTHETIC_DATA_OVERRIDES
from fmnist.training.rundir import same_config

#: The machine a normalized time refers to: ``time x measured fp32 peak / 200 GFLOP/s``.
REFERENCE_PEAK = 200.0
DOC = Path(__file__).resolve().parents[1] / "docs" / "ablations.md"
#: The heading of DOC's hand-written record, which a rewrite of the tables keeps.
RECORD = "\n## Preset history\n"


@dataclass(frozen=True)
class Technique:
    name: str
    overrides: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Table:
    """A baseline (the overrides of ``train.py``) at a fixed budget, and what is tried on it."""

    key: str  # its name in TABLES and in run directories
    title: str
    baseline: tuple[str, ...]
    seeds: tuple[int, ...]
    target: float  # test accuracy the preset built from this table must reach
    techniques: tuple[Technique, ...]


def validate_at_end(epochs: int) -> tuple[str, ...]:
    """Validation once, after the last of ``epochs`` (the quick preset trains without it)."""
    return ("++trainer.limit_val_batches=1.0", f"++trainer.check_val_every_n_epoch={epochs}")


#: The presets now train with flips (the tables' first winner): each table starts from the recipe
#: before them, so its "flip" row measures them rather than repeating the baseline.
WITHOUT_FLIPS = ("data.hflip=false", "module.tta_flip=false")

EMA = "+callbacks.ema._target_=lightning.pytorch.callbacks.EMAWeightAveraging"
SWA = "+callbacks.swa._target_=lightning.pytorch.callbacks.StochasticWeightAveraging"

TECHNIQUES = (
    Technique("flip", ("data.hflip=true", "module.tta_flip=true"),
              "random horizontal flips, and flip TTA trained for it"),
    Technique("shift TTA", ("module.tta_shift=1",),
              "TTA over 1-pixel diagonal translations (airbench)"),
    Technique("translate", ("data.crop_padding=1",), "random 1-pixel translations (crops)"),
    Technique("erasing", ("data.erasing=0.25",), "random erasing on a quarter of the images"),
    Technique("label smoothing 0.2", ("module.label_smoothing=0.2",), "from 0.1"),
    Technique("EMA", (EMA, "+callbacks.ema.decay=0.995"),
              "exponential moving average of the weights (Lightning's EMAWeightAveraging)"),
    Technique("dirac init", ("+model.dirac_init=true",), "identity-initialized convs (airbench)"),
    Technique("Nesterov SGD", ("optimizer=sgd", "optimizer.lr=0.1",
                               "optimizer.weight_decay=0.0005",
                               "+scheduler.anneal_strategy=linear"),
              "Nesterov SGD with a triangular (linear one-cycle) schedule, not AdamW"),
    Technique("batch 512", ("data.batch_size=512", "optimizer.lr=0.01"),
              "twice the batch, fewer and cheaper steps; peak lr scaled by ~sqrt(2)"),
    Technique("wider block 1", ("model.filters=[24,48,96]",), "24 channels at 28x28, not 16"),
    Technique("wider blocks 2-3", ("model.filters=[16,64,128]",), "64-128 after pooling"),
    Technique("translate + shift TTA", ("data.crop_padding=1", "module.tta_shift=1"),
              "shift TTA trained for: 1-pixel random translations with it"),
    Technique("alternating flips", ("data.hflip=alternate", "module.tta_flip=true"),
              "each image mirrored on every other epoch instead of at random (airbench)"),
)  # fmt: skip
#: At the default's budget: the technique that won at the quick budget, and shift TTA, which
#: the default's 2-pixel crops train for (it lost at the quick budget, which has no crops).
DEFAULT_TECHNIQUES = (
    TECHNIQUES[0],  # flip
    Technique("shift TTA", ("module.tta_shift=1",),
              "TTA over 1-pixel diagonal translations: the default trains with 2-pixel crops"),
)  # fmt: skip

LOOKAHEAD = "+callbacks.lookahead._target_=fmnist.training.optim.Lookahead"
#: The two rows the speedrun and default tables share with the combinations table.
MUON = Technique(
    "Muon",
    ("optimizer=muon",),
    "Muon on conv filters at 5x the peak rate, AdamW on the rest, no decay on norms",
)
LOOKAHEAD_ROW = Technique(
    "lookahead",
    (LOOKAHEAD,),
    "airbench's lookahead every 5 steps, with fast batch-norm momentum (0.4)",
)
#: airbench's blocks: two convs each, pooled after the first, so the second runs at half the
#: resolution (airbench's order; at cpu_best: docs/ablations.md, Third pass).
AIRBENCH_BLOCKS = ("model.convs_per_block=2", "model.pool_first=true")
#: The quick preset before the combinations table chose Muon and lookahead for it.
WITHOUT_COMBINATIONS = ("optimizer=adamw", "~optimizer.conv_lr_scale", "~callbacks.lookahead")
#: The record-setters' combinations (issue 29), on top of the quick preset with flips.
COMBINATIONS = (
    Technique("Muon", ("optimizer=muon", "++optimizer.conv_lr_scale=5"),
              "Muon on conv filters at 5x the peak rate, AdamW on the rest, no decay on norms"),
    Technique("Muon 2x rate", ("optimizer=muon", "++optimizer.conv_lr_scale=10"),
              "Muon's conv rate doubled"),
    LOOKAHEAD_ROW,
    Technique("Muon half rate", ("++optimizer.conv_lr_scale=2.5",), "Muon's conv rate halved"),
    Technique("label smoothing 0.2", ("module.label_smoothing=0.2",), "airbench's, from 0.1"),
    Technique("batch 512", ("data.batch_size=512", "optimizer.lr=0.008"),
              "half the steps (Muon is said to suit large batches), peak lr x ~sqrt(2)"),
    Technique("wider blocks 2-3, 5 epochs", ("model.filters=[16,64,128]", "trainer.max_epochs=5",
                                             "++trainer.check_val_every_n_epoch=5"),
              "64-128 channels after pooling (~1.25x a step) paid for by one epoch less"),
    Technique("SWA", (SWA, "+callbacks.swa.swa_lrs=0.001", "+callbacks.swa.swa_epoch_start=0.5",
                      "+callbacks.swa.annealing_epochs=1"),
              "Lightning's weight average of the last 3 epochs, at a constant rate of 1e-3 (it "
              "replaces the one-cycle tail)"),
    Technique("airbench blocks, 3 epochs", (*AIRBENCH_BLOCKS, "trainer.max_epochs=3",
                                            "++trainer.check_val_every_n_epoch=3"),
              "two convs a block, pooled after the first (~1.8x an epoch), half the epochs"),
)  # fmt: skip
#: The speedrun's budget, first with Muon, then in one epoch instead of two (its 8 s target).
SPEEDRUN_TECHNIQUES = (
    MUON,
    Technique("Muon, 1 epoch", ("optimizer=muon", "trainer.max_epochs=1",
                                "++trainer.check_val_every_n_epoch=1"),
              "half the steps: the 8 s target needs ~1.8x fewer"),
    Technique("Muon, 1 epoch, 2x conv rate", ("optimizer=muon", "trainer.max_epochs=1",
                                              "++trainer.check_val_every_n_epoch=1",
                                              "optimizer.conv_lr_scale=10"),
              "half the steps, Muon's conv rate doubled"),
)  # fmt: skip

#: The quick table's winners at the default's budget (Muon at the same conv peak rate, 0.015).
DEFAULT_COMBINATIONS = (
    MUON,
    LOOKAHEAD_ROW,
    Technique("airbench blocks, 10 epochs", (*AIRBENCH_BLOCKS, "trainer.max_epochs=10",
                                             "++trainer.check_val_every_n_epoch=10"),
              "two convs a block, pooled after the first (~1.5x a step), five epochs less"),
)  # fmt: skip

#: 6 epochs of 55,000 images, validated once at the end, the quick preset's net and settings
#: as they stood before the combinations table.
QUICK_BUDGET = ("experiment=quick", *WITHOUT_COMBINATIONS, "data.val_size=5000",
                "trainer.max_epochs=6", "++trainer.max_steps=-1", *validate_at_end(6))  # fmt: skip

TABLES: dict[str, Table] = {
    "quick": Table(
        "quick",
        "The quick budget: 6 epochs of the 16-48-96 CNN at batch 256 (`experiment=quick`)",
        (*QUICK_BUDGET, *WITHOUT_FLIPS),
        (0, 1),
        0.930,
        TECHNIQUES,
    ),
    "combinations": Table(
        "combinations",
        "The quick preset with flips, before Muon and lookahead: 6 epochs of 55,000 images, "
        "validated at the end",
        QUICK_BUDGET,
        (0, 1),
        0.930,
        COMBINATIONS,
    ),  # fmt: skip
    "speedrun": Table(
        "speedrun",
        "The speedrun's budget, before Muon: 2 epochs of 55,000 images at batch 256, validated "
        "at the end",
        (
            "experiment=speedrun",
            "optimizer=adamw",
            "data.val_size=5000",
            "trainer.max_epochs=2",
            "++trainer.max_steps=-1",
            *validate_at_end(2),
        ),
        (0, 1),
        0.9115,
        SPEEDRUN_TECHNIQUES,
    ),  # fmt: skip
    "default": Table(
        "default",
        "The default's budget: 15 epochs of the default recipe (`python train.py`), tested on "
        "the final weights",
        (
            "callbacks=none",
            "logger=none",
            *validate_at_end(15),
            *WITHOUT_FLIPS,
            "module.tta_shift=0",
        ),
        (0,),  # a confirmation of the quick table's winners (7.5 min a run); the frontier
        # runs the preset built from it on seeds 0 and 1
        0.938,
        DEFAULT_TECHNIQUES,
    ),
    "default_combinations": Table(
        "default_combinations",
        "The default recipe as it stands (flips, shift TTA), 15 epochs, tested on the final "
        "weights",
        ("callbacks=none", "logger=none", *validate_at_end(15)),
        (0, 1),
        0.938,
        DEFAULT_COMBINATIONS,
    ),
}


def machine_peak() -> float:
    return matmul_peak_gflops()


def run_record(ctx: Context, name: str, seed: int) -> Path:
    """Where one seed of a row keeps its results, in its run directory (read back later)."""
    return ctx.workdir / f"{name}-s{seed}" / "ablation_run.json"


def run_seed(ctx: Context, overrides: list[str], seed: int, name: str) -> dict[str, Any]:
    """One trained seed (or its metrics read back from a finished run directory)."""
    record = run_record(ctx, name, seed)
    folder = record.parent
    cfg = ctx.compose(*overrides, f"seed={seed}", *tiny_overrides(ctx), folder=folder.name)
    if record.is_file():
        stored = json.loads(record.read_text())
        # the same run: the same overrides, or others that compose the same config (a table
        # whose baseline now undoes what its preset later took up)
        add_fit_timer(cfg)  # as the stored config has it
        if stored.get("overrides") == overrides or same_config(cfg, folder):
            return {**stored, "overrides": overrides, "read_back": True}
    if (folder / "metrics.json").exists():  # another config's finished run: trained anew
        shutil.rmtree(folder)
        cfg = ctx.compose(*overrides, f"seed={seed}", *tiny_overrides(ctx), folder=folder.name)
    timed = train_timed(cfg)
    metrics = json.loads((folder / "metrics.json").read_text())
    run = {"seed": seed, "overrides": overrides, "val_acc": metrics.get("val/acc_best"),
           **timed, "flops_per_image": preset_flops_per_image(cfg)}  # fmt: skip
    record.write_text(json.dumps(run))
    return run


def measured_row(ctx: Context, table: str, name: str, overrides: list[str]) -> dict | None:
    """The same row in the results file this run continues, if it is there."""
    rows = ctx.previous.get("ablations", {}).get("tables", {}).get(table, {}).get("rows", [])
    return next((r for r in rows if r["name"] == name and r["overrides"] == overrides), None)


def tiny_overrides(ctx: Context) -> list[str]:
    if not ctx.tiny:
        return []
    # the synthetic data's validation split again, over a table's (sized for 60,000 images)
    val_size = [o for o in SYNTHETIC_DATA_OVERRIDES if o.startswith("data.val_size=")]
    return ["trainer.max_epochs=1", "++trainer.limit_train_batches=3",
            "++trainer.check_val_every_n_epoch=1", *val_size]  # fmt: skip


def mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def run_folder(table: str, row: str) -> str:
    """The run directory's name (without the seed) of a row of a table."""
    return f"ablation-{table}-{row.replace(' ', '_').replace('.', '')}"


def run_row(ctx: Context, table: Table, name: str, overrides: list[str]) -> dict[str, Any]:
    """Every seed of one row, with the fp32 peak measured before and after (the higher kept)."""
    peak_before = machine_peak()
    folder = run_folder(table.key, name)
    runs = [run_seed(ctx, overrides, seed, folder) for seed in table.seeds]
    peak = max(peak_before, machine_peak())
    earlier = measured_row(ctx, table.key, name, overrides)
    stored = [r.get("peak_gflops") for r in runs]
    if all(r.get("read_back") for r in runs) and (earlier is not None or all(stored)):
        # the peak of when these runs trained, not of this moment
        peak = earlier["peak_gflops"] if earlier is not None else max(stored)
    for run in runs:  # each run keeps the peak it trained at, for a later read-back
        if not run.get("read_back"):
            run["peak_gflops"] = peak
            run_record(ctx, folder, run["seed"]).write_text(json.dumps(run))
    val, val_std = mean_std([r["val_acc"] for r in runs])
    test, test_std = mean_std([r["test_acc"] for r in runs])
    fit = statistics.median(r["fit_s"] for r in runs)
    print(f"   {name}: val {val:.4f} test {test:.4f} fit {fit:.1f} s (peak {peak:.0f})", flush=True)
    return {"name": name, "overrides": overrides, "runs": runs, "val_mean": val,
            "val_std": val_std, "test_mean": test, "test_std": test_std, "fit_s": fit,
            "peak_gflops": peak, "normalized_fit_s": fit * peak / REFERENCE_PEAK,
            "reached_target": min(r["test_acc"] for r in runs) >= table.target}  # fmt: skip


def ablate(ctx: Context, table: Table) -> dict[str, Any]:
    """The baseline, then each technique on top of what was kept so far."""
    kept = list(table.baseline)
    base = run_row(ctx, table, "baseline", kept)
    rows, best = [base], base
    for technique in table.techniques:
        row = run_row(ctx, table, technique.name, [*kept, *technique.overrides])
        row.update(why=technique.why, added=list(technique.overrides),
                   delta_val=row["val_mean"] - best["val_mean"],
                   delta_test=row["test_mean"] - best["test_mean"],
                   kept=row["val_mean"] > best["val_mean"])  # fmt: skip
        if row["kept"]:
            kept, best = row["overrides"], row
        rows.append(row)
    return {"title": table.title, "seeds": list(table.seeds), "target": table.target,
            "rows": rows, "final": kept}  # fmt: skip


def ablations(ctx: Context) -> dict[str, Any]:
    """The tables of ``ctx.ablations`` (default: all), merged with those measured earlier;
    writes docs/ablations.md (not in tiny mode)."""
    names = ctx.ablations or list(TABLES)
    tables = dict(ctx.previous.get("ablations", {}).get("tables", {}))
    for name in names:
        print(f"== ablation table: {name}", flush=True)
        table = TABLES[name]
        if ctx.tiny:  # the harness, not the recipes: two techniques, one seed
            table = replace(table, seeds=table.seeds[:1], techniques=table.techniques[:2])
        tables[name] = ablate(ctx, table)
    part = {"tables": tables}
    if not ctx.tiny:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        old = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(ablation_markdown(part) + old[old.find(RECORD) :] * (RECORD in old))
    return part


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def table_markdown(name: str, t: dict[str, Any]) -> list[str]:
    seeds = ("Seeds " if len(t["seeds"]) > 1 else "Seed ") + ", ".join(map(str, t["seeds"]))
    lines = [f"## {name}: {t['title']}", "",
             f"{seeds}; mean ± std over them. Kept: the row raised the mean validation "
             f"accuracy over the best row so far, and later rows build on it. Target of the "
             f"preset: every seed >= {_pct(t['target'])}% test.", "",
             "| technique | added overrides | val acc % | Δ val | test acc % | Δ test | "
             "train s (normalized) | kept |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in t["rows"]:
        added = " ".join(f"`{o}`" for o in row.get("added", [])) or "(baseline)"
        val, test = (
            _pct(row[f"{k}_mean"])
            + (f" ± {_pct(row[f'{k}_std'])}" if row[f"{k}_std"] is not None else "")
            for k in ("val", "test")
        )
        time = f"{row['fit_s']:.0f} ({row['normalized_fit_s']:.0f} at {row['peak_gflops']:.0f})"
        kept = "" if "kept" not in row else ("**yes**" if row["kept"] else "no")
        deltas = [_pct(row.get(key), signed=True) for key in ("delta_val", "delta_test")]
        lines.append(f"| {row['name']} | {added} | {val} | {deltas[0]} | {test} | {deltas[1]} "
                     f"| {time} | {kept} |")  # fmt: skip
    final = " ".join(t["final"])
    return [*lines, "", f"Final recipe of this table: `python train.py {final}`", ""]


def ablation_markdown(part: dict[str, Any]) -> str:
    lines = ["# Ablations", "",
             "Tables written by `python -m bench.run --parts ablations` (bench/ablations.py); "
             "do not edit them. Times are training time in seconds on this machine, and in "
             f"brackets normalized to a {REFERENCE_PEAK:.0f} GFLOP/s fp32 matmul peak "
             "(`time x peak / 200`, the peak measured before and after each row, the higher "
             "kept) at the peak shown.", ""]  # fmt: skip
    for name, table in part["tables"].items():
        lines += table_markdown(name, table)
    return "\n".join(lines)
