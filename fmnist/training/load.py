"""The one checkpoint loader: a file in, a trained module out, or one ``CheckpointError``.

A checkpoint is data from a file, possibly hostile: it is read with ``weights_only=True``
(never pickled code), and its hyperparameters are checked against an allowlist before
anything is built: the network only from this project's models with plain-value arguments
(``fmnist.models.build_net``), the optimizer and scheduler only as plain ``torch.optim`` (or
our ConvMuon) configs (never built here), every other key known and of its type, no nested
``_target_``.

Not ``ClassificationModule.load_from_checkpoint``: it passes the stored hyperparameters
unchecked and reports mismatched weights in torch's words. Here the allowlist sits between
reading and building, and shapes are compared before loading, so every failure names its
cause and the fix.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ValidationError, create_model

from fmnist.checkpoint import (
    CHECKSUM_KEY,
    TEMPERATURE_KEY,
    check_weights,
    read_checkpoint,
    weights_checksum,
    weights_mismatch,
)
from fmnist.config import STRICT, invalid
from fmnist.data import FashionMNISTDataModule
from fmnist.errors import CheckpointError
from fmnist.files import write_torch
from fmnist.models import config_problem, is_plain, model_classes
from fmnist.training.optim import ConvMuon

#: The data module's settings a model depends on (split and preprocessing), taken from the
#: checkpoint; where the files are (root, download, ...) stays the caller's.
DATA_SETTINGS = ("val_size", "split_seed", "normalize", "flatten", "one_hot")


def _torch_classes(module: Any, base: type) -> dict[str, type]:
    return {
        f"{module.__name__}.{name}": cls
        for name, cls in vars(module).items()
        if isinstance(cls, type) and issubclass(cls, base) and cls is not base
    }


#: Optimizer and scheduler configs may only name torch's own classes, and our ConvMuon.
OPTIMIZERS = {**_torch_classes(torch.optim, torch.optim.Optimizer),
              "fmnist.training.optim.ConvMuon": ConvMuon}  # fmt: skip
SCHEDULERS = _torch_classes(torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler)


def _hparams_problem(hparams: Any) -> str | None:
    """Why these module hyperparameters may not be used to build a model (None: they may)."""
    if not isinstance(hparams, Mapping) or not hparams.get("net"):
        return "hyper_parameters holds no model config ('net')"
    problem = config_problem(hparams["net"], model_classes(), "hyper_parameters.net")
    for key, allowed in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS)):
        if problem is None and hparams.get(key) is not None:
            problem = config_problem(hparams[key], allowed, f"hyper_parameters.{key}")
    if problem is None:
        try:
            module_settings().model_validate(hparams)
        except ValidationError as exc:
            problem = str(invalid("hyper_parameters", [], exc)).rstrip(".")
    return problem


@functools.cache
def module_settings() -> type[BaseModel]:
    """The module's settings as a pydantic model of its constructor's annotations (every
    key optional, no other key), so a checkpoint's values are checked as a config's are."""
    from fmnist.training.module import ClassificationModule  # imports Lightning: keep lazy

    hints = typing.get_type_hints(ClassificationModule.__init__, include_extras=True)
    hints.pop("return")
    fields: Any = {name: (hint, None) for name, hint in hints.items()}
    return create_model("ModuleSettings", __config__={**STRICT, "extra": "forbid"}, **fields)


def data_settings(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The split and preprocessing settings the model was trained with (plain values only)."""
    stored = checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(stored, Mapping):
        return {}
    return {k: stored[k] for k in DATA_SETTINGS if k in stored and is_plain(stored[k])}


def check_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's content when it is readable, ours and intact; else a CheckpointError."""
    checkpoint = read_checkpoint(path)
    if problem := _hparams_problem(checkpoint.get("hyper_parameters")):
        raise CheckpointError(
            f"{path} cannot be loaded: {problem}. Only checkpoints written by this project's "
            "train.py are loaded, and nothing in a checkpoint may name code to run."
        )
    check_weights(checkpoint, path)
    return checkpoint


def load_classifier(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The trained ``ClassificationModule`` (eval mode, CPU) and its data settings."""
    from fmnist.training.module import ClassificationModule  # imports Lightning: keep lazy

    checkpoint = check_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    hparams["compile"] = False  # compiling pays for long training, not for loading
    module = ClassificationModule(**hparams)
    problem = weights_mismatch(module.state_dict(), checkpoint["state_dict"])
    if problem:
        raise CheckpointError(
            f"{path}: the weights do not fit the model built from its config "
            f"{hparams['net']}: {problem}."
        )
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval(), data_settings(checkpoint)


def store_temperature(path: str | Path, temperature: float) -> None:
    """Write a fitted temperature into a checkpoint of this project, atomically, with its
    weights checksum updated (the checkpoint is checked as any other before)."""
    checkpoint = check_checkpoint(path)
    state = checkpoint["state_dict"]
    state[TEMPERATURE_KEY] = torch.tensor(float(temperature), dtype=state[TEMPERATURE_KEY].dtype)
    checkpoint[CHECKSUM_KEY] = weights_checksum(state)
    write_torch(path, checkpoint)


def datamodule_for(
    data: DictConfig | Mapping[str, Any], settings: Mapping[str, Any]
) -> FashionMNISTDataModule:
    """The data module of a data config, with a checkpoint's split and preprocessing
    (:func:`data_settings`: which images are validation); where the files are found stays
    the config's."""
    if isinstance(data, DictConfig):
        data = OmegaConf.to_container(data, resolve=True)
    config = {k: v for k, v in data.items() if k != "_target_"}
    datamodule = FashionMNISTDataModule(**{**config, **settings})
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule
