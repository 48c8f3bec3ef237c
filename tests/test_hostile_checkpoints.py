"""Hostile checkpoints: a file that loads under ``weights_only=True`` must still run no code.

Each crafted checkpoint names a function that would create a canary file if it were called
(as Hydra's ``instantiate`` would call a nested ``_target_``). Every way to load a model
(predict, export, ``analyze.py task=model``, resuming) must refuse it with a
``CheckpointError`` naming the offending key, and the canary must never appear.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from fmnist.errors import CheckpointError
from fmnist.inference.export import exportable
from fmnist.training.load import load_classifier
from fmnist.training.run import train

QUICK = ["model.filters=[4]", "model.hidden=8", "logger=none", "callbacks.lr_monitor=null",
         "callbacks.permutation_importance=null", "callbacks.activation_capture=null",
         "callbacks.learning_curves=null", "trainer.max_epochs=1", "test=false"]  # fmt: skip


@pytest.fixture(scope="module")
def genuine(tmp_path_factory, fake_data_dir) -> Path:
    from conftest import TINY_OVERRIDES, compose_config

    out = tmp_path_factory.mktemp("genuine")
    train(compose_config("train", [*TINY_OVERRIDES, *QUICK], out, fake_data_dir))
    return out / "checkpoints" / "last.ckpt"


def canary_call(canary: Path) -> dict:
    """A Hydra node that creates ``canary`` when instantiated."""
    return {"_target_": "pathlib.Path.touch", "_args_": [str(canary)]}


def crafted(genuine: Path, tmp_path: Path, change) -> Path:
    contents = torch.load(genuine, weights_only=True)
    change(contents)
    path = tmp_path / "crafted.ckpt"
    torch.save(contents, path)
    return path


def set_in(*keys: str, value) -> callable:
    def change(contents: dict) -> None:
        node = contents
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = copy.deepcopy(value)

    return change


CASES = {
    "nested target in a model argument": (("hyper_parameters", "net", "dropout"), "net.dropout"),
    "model target replaced": (("hyper_parameters", "net"), "net._target_"),
    "optimizer target": (("hyper_parameters", "optimizer"), "optimizer._target_"),
    "scheduler target": (("hyper_parameters", "scheduler"), "scheduler._target_"),
    "unknown module setting": (("hyper_parameters", "callback"), "hyper_parameters.callback"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_configs_run_no_code_anywhere(case, genuine, tmp_path, fake_data_dir) -> None:
    keys, named = CASES[case]
    canary = tmp_path / "pwned"
    value = canary_call(canary)
    if keys[-1] == "net":  # a whole model config whose target is the function itself
        value = {**value, "filters": [4]}
    path = crafted(genuine, tmp_path, set_in(*keys, value=value))
    loaders = {
        "load": lambda: load_classifier(path),
        "export": lambda: exportable(path),
        "resume": lambda: _resume_from(path, tmp_path, fake_data_dir),
        "analyze": lambda: _analyze(path, tmp_path, fake_data_dir),
    }
    for name, load in loaders.items():
        with pytest.raises(CheckpointError, match=named.replace(".", r"\.")):
            load()
        assert not canary.exists(), f"{name} ran code from the checkpoint"


def _resume_from(path: Path, tmp_path: Path, data_dir: Path) -> None:
    from conftest import TINY_OVERRIDES, compose_config

    cfg = compose_config(
        "train", [*TINY_OVERRIDES, *QUICK, f"ckpt_path={path}"], tmp_path / "resume", data_dir
    )
    train(cfg)


def _analyze(path: Path, tmp_path: Path, data_dir: Path) -> None:
    from conftest import TINY_OVERRIDES, compose_config

    from fmnist.tasks import run_analysis

    data = [o for o in TINY_OVERRIDES if o.startswith("data.")]
    cfg = compose_config("analyze", [*data, "task=model", f"ckpt={path}"], tmp_path / "a", data_dir)
    run_analysis(cfg)


@pytest.mark.parametrize(
    "change, words",
    [
        (set_in("hyper_parameters", value=["not", "a", "mapping"]), "no model config"),
        (set_in("hyper_parameters", "tta_flip", value="yes"), r"tta_flip='yes'"),
        (set_in("hyper_parameters", "normalize", value="zscore"), "normalize='zscore'"),
        (set_in("hyper_parameters", "net", "filters", value=[[4]]), r"net\.filters holds"),
        (set_in("hyper_parameters", "net", "_partial_", value=False), r"net\._partial_"),
        (set_in("state_dict", value=[1, 2]), "holds no model weights"),
    ],
)
def test_malformed_checkpoints_are_one_line_errors(change, words, genuine, tmp_path) -> None:
    with pytest.raises(CheckpointError, match=words):
        load_classifier(crafted(genuine, tmp_path, change))


def test_non_finite_and_flipped_weights_are_refused(genuine, tmp_path) -> None:
    def nan_weights(contents: dict) -> None:
        contents["state_dict"]["classifier.net.classifier.1.weight"][0, 0] = float("nan")

    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_classifier(crafted(genuine, tmp_path, nan_weights))

    def flip_a_bit(contents: dict) -> None:
        weight = contents["state_dict"]["classifier.net.classifier.1.weight"]
        weight.view(torch.int32)[0, 0] ^= 1 << 3  # a tiny change of one weight

    with pytest.raises(CheckpointError, match="checksum"):
        load_classifier(crafted(genuine, tmp_path, flip_a_bit))
    module, _ = load_classifier(genuine)  # the untouched file still loads
    assert not module.training


def test_garbage_files_are_one_line_errors(tmp_path) -> None:
    for name, data in {
        "text.ckpt": b"hello",
        "zeros.ckpt": bytes(4096),
        "utf16.ckpt": "\ufeffcheckpoint".encode("utf-16"),
    }.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match="not a readable checkpoint"):
            load_classifier(tmp_path / name)


def test_the_advice_for_a_broken_last_ckpt_does_not_point_back_at_it(tmp_path) -> None:
    broken = tmp_path / "checkpoints" / "last.ckpt"
    broken.parent.mkdir()
    broken.write_bytes(b"")  # what a kill during a non-atomic write left
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as error:
        load_classifier(broken)
    assert str(error.value).count("last.ckpt") == 1  # named as the broken file, nowhere else
