"""The benchmark's parts. Each takes a :class:`Context` and returns a JSON-ready dict.

Runs go through the same ``train(cfg)`` as ``train.py``, with configs composed by Hydra from
``conf/``; each part times what it compares in one process, one after the other.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from bench.ablations import ablations
from bench.context import CONF_DIR, Context, train_timed
from bench.frontier import frontier
from bench.plain import build_parts, plain_training_loop
from bench.precision import precision
from bench.targets import PRESETS
from bench.timing import synchronize

TARGET_OVERHEAD = 1.05


def speedrun(ctx: Context) -> dict[str, Any]:
    """(1) Time to accuracy: the fixed ``experiment=speedrun`` recipe, one run per seed."""
    extra = [f"trainer.max_steps={ctx.steps(430)}"] if ctx.tiny else []
    target = PRESETS["speedrun"]
    runs = []
    for seed in ctx.seeds:
        result = train_timed(ctx.compose(*target.overrides, f"seed={seed}", *extra))
        result["seed"] = seed
        result["reached_target"] = bool(result["test_acc"] >= target.min_acc)
        runs.append(result)
    accs, loops = [r["test_acc"] for r in runs], [r["loop_s"] for r in runs]
    return {
        "command": target.command,
        "target_acc": target.min_acc,
        "target_s": target.max_s,
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
    """Seconds per training batch: loading + augment + preprocess (+ model step)."""
    datamodule, module = build_parts(cfg)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    loader = datamodule.train_dataloader()
    done, start = 0, 0.0
    while done < batches + 1:  # the first batch warms up and is not timed
        for images, labels in loader:
            if done == 1:
                synchronize()
                start = time.perf_counter()
            x = module.classifier.preprocess(datamodule.augment(images))
            x = x.contiguous(memory_format=torch.channels_last)
            if with_model:
                loss = torch.nn.functional.cross_entropy(module.net(x), labels)
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


def photos(ctx: Context) -> dict[str, Any]:
    """(6) People's photos (bench/photos.py on ``--ckpt``): writes photos.json/md beside the
    results and the README's contact sheets; keeps the suite's summary here."""
    from bench import photos as photo_bench

    if not ctx.ckpt:
        if ctx.tiny:  # the tiny bench checks the harness: there is no trained model to use
            return {"skipped": "no --ckpt"}
        raise SystemExit("--parts photos needs --ckpt PATH (a checkpoint written by train.py)")
    figures = Path(__file__).resolve().parent.parent / "docs" / "figures"
    argv = ["--ckpt", ctx.ckpt, "--out", str(ctx.out)]
    if not ctx.tiny:
        argv += ["--figure", str(figures / "contact_sheet.png"), "--sheets", str(figures)]
    else:
        argv += ["--n", "20"]
    results = photo_bench.main(argv)
    suite = results["suite"]
    below = {name: row["points_below_raw"] for name, row in suite["conditions"].items()}
    return {
        "ckpt": ctx.ckpt,
        "raw_tiles": suite["raw_tiles"],
        "worst_condition": max(below, key=below.get),
        "worst_points_below_raw": max(below.values()),
        "conditions_within_3_points": sum(v <= 3 for v in below.values()),
        "conditions": len(below),
        "convert_ms": suite["timing"]["convert_ms"],
    }


PARTS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "speedrun": speedrun,
    "overhead": overhead,
    "data": data_pipeline,
    "callbacks": callbacks_cost,
    "full": full_runs,
    "frontier": frontier,
    "photos": photos,
    "ablations": ablations,
    "precision": precision,
}
#: Parts run when none are named: all but the slow ones.
DEFAULT_PARTS = ("speedrun", "overhead", "data", "callbacks")
#: Parts that run their own pieces under the load guard, so are not repeated whole.
REPEATS_INSIDE = frozenset({"frontier", "photos", "ablations", "precision"})

__all__ = ["DEFAULT_PARTS", "PARTS", "REPEATS_INSIDE"]
