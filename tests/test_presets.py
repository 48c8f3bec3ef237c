"""Each preset is the default run, its group choices, and exactly the values it lists."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from fmnist.config import CONF_DIR

FAST_CPU = ["callbacks=none", "logger=none", "trainer=cpu"]
TIMED_RUN = {"trainer.max_epochs": -1, "trainer.limit_val_batches": 0,
             "trainer.enable_progress_bar": False, "trainer.enable_model_summary": False,
             "data.on_device": True, "module.tta_shift": 0, "data.val_size": 0}  # fmt: skip

#: preset -> (its group choices, every value it changes on top of them).
PRESETS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "best": (
        ["model=resnet", "optimizer=sgd", "scheduler=cosine"],
        {"model.blocks": [4, 4, 4], "model.widths": [160, 320, 640], "model.stem_width": 16,
         "module.tta_shift": 0, "optimizer.lr": 0.1, "data.crop_padding": 4,
         "data.erasing": 0.5, "trainer.max_epochs": 100},
    ),
    "cpu_best": (
        [],
        {"model.convs_per_block": 2, "model.dropout": 0.2, "data.erasing": 0.25,
         "data.val_size": 0, "trainer.max_epochs": -1, "trainer.max_steps": 21500,
         "trainer.limit_val_batches": 0, "callbacks.model_checkpoint": None,
         "callbacks.temperature_scaling": None, "callbacks.activation_capture.split": "test",
         "callbacks.permutation_importance.split": "test"},
    ),
    "quick": (
        [*FAST_CPU, "optimizer=muon"],
        {**TIMED_RUN, "model.filters": [16, 48, 96], "model.dropout": 0.0, "model.hidden": 128,
         "optimizer.lr": 0.006, "optimizer.conv_lr_scale": 2.5,
         "callbacks.lookahead._target_": "fmnist.training.optim.Lookahead",
         "scheduler.max_lr": 0.006, "data.batch_size": 256, "data.crop_padding": 0,
         "trainer.max_steps": 1290},
    ),
    "robust": (
        [],
        {"data.corruption_mix": 0.5, "data.hflip": False, "module.tta_flip": False,
         "module.tta_shift": 0},
    ),
    "seed": (
        ["optimizer=adam", "scheduler=none"],
        {"model.batch_norm": False, "model.dropout": 0.3, "model.hidden": 128,
         "module.label_smoothing": 0.0, "module.tta_flip": False, "module.tta_shift": 0,
         "data.batch_size": 64, "data.crop_padding": 0, "data.hflip": False,
         "trainer.max_epochs": 10},
    ),
    "speedrun": (
        [*FAST_CPU, "optimizer=muon"],
        {**TIMED_RUN, "model.filters": [16, 48, 96], "model.dropout": 0.0, "model.hidden": 128,
         "module.label_smoothing": 0.18, "module.tta_flip": False, "optimizer.lr": 0.012,
         "optimizer.weight_decay": 0.03, "scheduler.max_lr": 0.012, "scheduler.pct_start": 0.15,
         "data.batch_size": 256, "data.crop_padding": 0, "data.hflip": False,
         "trainer.max_steps": 430},
    ),
}  # fmt: skip


def flat(overrides: list[str], tmp_path) -> dict[str, Any]:
    """The composed, resolved run config as ``key.path -> value`` (paths left out)."""
    cfg = compose_config("train", overrides, tmp_path)
    cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg.pop("paths")

    def leaves(node: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {prefix: node}
        return {
            k: v for key, child in node.items() for k, v in leaves(child, f"{prefix}{key}.").items()
        }

    return {key.rstrip("."): value for key, value in leaves(cfg, "").items()}


def test_the_presets_are_all_listed() -> None:
    assert sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")) == sorted(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_changes_exactly_its_listed_values(preset: str, tmp_path) -> None:
    choices, expected = PRESETS[preset]
    base, composed = flat(choices, tmp_path), flat([f"experiment={preset}"], tmp_path)
    switched_off = tuple(f"{k}." for k, v in expected.items() if v is None)  # a callback: null
    taken = {k for k in base.keys() - composed.keys() if not k.startswith(switched_off)}
    assert not taken  # a preset takes away only what it lists as null
    changed = {k: v for k, v in composed.items() if k not in base or repr(v) != repr(base[k])}
    assert changed == expected
    assert all(repr(changed[k]) == repr(v) for k, v in expected.items())  # 0 is not 0.0
