"""Benchmark: `python -m bench.run [--tiny] [--parts speedrun overhead data callbacks full photos
frontier ablations precision] [--presets NAME[:SEEDS] ...] [--ckpt PATH]` (photos:
bench/photos.py on PATH).

Writes ``bench/results.json`` and the Markdown tables ``bench/results.md`` that the README
shows (and ``bench/frontier.png`` with the frontier part). Run it alone on the machine: the
numbers are wall-clock times, and each part records the load average around it (a part that
starts on a busy machine is repeated once). ``--tiny`` runs every part on a small synthetic
dataset in seconds (the test suite does), checking the harness, not the speed. Parts named
with ``--parts`` (and presets named with ``--presets``) replace theirs in an existing results
file, so a slow one can be run on its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch

from bench.ablations import TABLES
from bench.context import Context
from bench.frontier import draw as draw_frontier
from bench.parts import DEFAULT_PARTS, PARTS, REPEATS_INSIDE
from bench.report import command_line, markdown, write_results
from bench.synthetic import SYNTHETIC_DATA_OVERRIDES, write_synthetic_dataset
from bench.targets import PRESETS
from bench.timing import LoadGuard, load_average
from fmnist.hardware import SPEED_FLAGS, cpu_flags, cpu_model

BENCH_DIR = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    """What the numbers were measured on: the CPU and the flags its speed depends on."""
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in flags],
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": load_average(),
    }


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def preset_and_seeds(text: str) -> tuple[str, list[int] | None]:
    """``NAME`` or ``NAME:SEED,SEED``: a frontier preset of bench/targets.py and its seeds."""
    name, _, seeds = text.partition(":")
    if name not in PRESETS:
        raise argparse.ArgumentTypeError(f"unknown preset {name!r}: one of {list(PRESETS)}")
    try:
        return name, [int(s) for s in seeds.split(",")] if seeds else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds of {name!r} must be integers: {seeds!r}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="synthetic data, a few steps")
    parser.add_argument("--parts", nargs="*", choices=list(PARTS), default=list(DEFAULT_PARTS))
    parser.add_argument(
        "--forget",
        nargs="+",
        choices=list(PARTS),
        default=[],
        help="drop these parts kept from an earlier results file (e.g. measured on another"
        " machine); `--parts --forget full` only rewrites the results without them",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=None, help="speedrun seeds (default 0 1 2; tiny: 0)"
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        type=preset_and_seeds,
        default=None,
        metavar="NAME[:SEEDS]",
        help="frontier (and precision) presets, e.g. `quick` or `speedrun:0,1` (default: all of"
        f" {list(PRESETS)} with their seeds; tiny: the first seed)",
    )
    parser.add_argument(
        "--ablation",
        nargs="+",
        choices=list(TABLES),
        default=[],
        help=f"ablation tables of the ablations part (default: all of {list(TABLES)})",
    )
    parser.add_argument(
        "--trainer",
        default=None,
        help="trainer config for every run, e.g. gpu (default: each preset's own, as train.py)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="folder for results.json/.md")
    parser.add_argument("--ckpt", default=None, help="the photos part's checkpoint (train.py's)")
    parser.add_argument(
        "--keep-runs",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep every run's directory (checkpoints, metrics.json, predictions.npz) under DIR,"
        " named by part, preset and seed, so analyze.py can use them (default: a temporary folder)",
    )
    return parser.parse_args(argv)


def run_parts(ctx: Context, names: list[str]) -> dict[str, Any]:
    """Each named part under the load guard, with its load record; the frontier repeats its
    presets itself (a whole frontier is over an hour)."""
    measured = {}
    for name in names:
        print(f"== bench part: {name}", flush=True)
        guard = replace(ctx.guard, repeat=False) if name in REPEATS_INSIDE else ctx.guard
        measured[name], load = guard.run(lambda name=name: PARTS[name](ctx))
        measured[name]["load"] = load
        # When and on what: a part kept into a later results file keeps its own stamp.
        measured[name]["measured"] = {"date": now(), "cpu": cpu_model()}
    return measured


def rewritten(previous: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """A results file rewritten without measuring (``--parts --forget X``): the date, machine
    and measuring command of the previous file, this command appended."""
    measured = previous.get("parts_measured", list(previous["parts"]))
    return {
        **results,
        "date": previous["date"],
        "machine": previous["machine"],
        "command": f"{previous['command']}` then `{results['command']}",
        "parts_measured": [name for name in measured if name in results["parts"]],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "results.json"
    previous = json.loads(json_path.read_text()) if json_path.is_file() else {}
    keep = previous.get("parts", {}) if previous.get("tiny") == args.tiny else {}
    keep = {name: part for name, part in keep.items() if name not in args.forget}

    measured_on = machine()  # before the runs: the load average says if the machine was idle
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        workdir = Path(tmp)
        runs_dir = args.keep_runs.resolve() if args.keep_runs else workdir / "runs"
        base = [f"trainer={args.trainer}"] if args.trainer else []
        if args.tiny:
            data_dir = write_synthetic_dataset(workdir / "data", 24, 8)
            base += [f"data.root={data_dir}", *SYNTHETIC_DATA_OVERRIDES]
        ctx = Context(
            workdir=runs_dir,
            tiny=args.tiny,
            base_overrides=base,
            seeds=args.seeds or ([0] if args.tiny else [0, 1, 2]),
            presets=dict(args.presets) if args.presets else {},
            ablations=args.ablation,
            out=args.out,
            previous=keep,
            guard=LoadGuard(max_wait_s=0, repeat=False) if args.tiny else LoadGuard(),
            ckpt=args.ckpt,
        )
        parts = {**keep, **run_parts(ctx, args.parts)}
    results = {
        "date": now(),
        "command": command_line("bench.run", argv),
        "tiny": args.tiny,
        "machine": measured_on,
        "parts": {name: parts[name] for name in PARTS if name in parts},
        "parts_measured": list(args.parts),  # by this command; the others were kept
    }
    if not args.parts and previous:  # only forgetting: the file still says what measured it
        results = rewritten(previous, results)
    if "frontier" in results["parts"]:
        draw_frontier(results["parts"]["frontier"], args.out)
    write_results(args.out, "results", results, markdown)
    return results


if __name__ == "__main__":
    main()
