"""Loading trained classifiers safely, with every failure turned into a ``CheckpointError``.

Checkpoints are always read with ``weights_only=True``: torch's restricted unpickler, which
loads tensors and plain Python data but never runs code stored in the file. Our checkpoints
need nothing more (the module's hyperparameters are plain configs, the datamodule's state is
two tensors and a string).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fmnist.errors import CheckpointError

#: Where Lightning stores a datamodule's ``state_dict`` in a checkpoint: its class name.
DATAMODULE_KEY = "FashionMNISTDataModule"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's content, read without executing pickled code."""
    path = Path(path).expanduser()
    if not path.is_file():
        hint = (
            " To resume a run, give its directory: hydra.run.dir=<run dir> ckpt_path=last."
            if path.name == "last.ckpt"
            else ""
        )
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Pass the path of a .ckpt file written by "
            f"train.py (runs keep them in <run dir>/checkpoints/).{hint}"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). It is truncated, "
            "corrupt or not a PyTorch checkpoint; use another checkpoint of the run (e.g. "
            "checkpoints/last.ckpt) or train again."
        ) from exc
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path} holds no model weights ('state_dict'): it is not a checkpoint written "
            "by train.py. Pass a .ckpt file from a run's checkpoints/ directory."
        )
    if "hyper_parameters" not in checkpoint or not checkpoint["hyper_parameters"].get("net"):
        raise CheckpointError(
            f"{path} has no model config in its hyperparameters, so its network cannot be "
            "rebuilt. Pass a checkpoint written by train.py of this project."
        )
    return dict(checkpoint)


def describe_mismatch(error: RuntimeError, net_config: Any) -> str:
    """One sentence naming the first mismatching layer of a failed ``load_state_dict``."""
    text = str(error)
    size = re.search(r"size mismatch for ([\w.]+): (.*?)\.?$", text, re.MULTILINE)
    if size:
        where = f"layer {size.group(1)}: {size.group(2)}"
    else:
        keys = re.search(r"(Missing key\(s\)|Unexpected key\(s\)) in state_dict: ([^.]*)", text)
        where = f"{keys.group(1).lower()} {keys.group(2)[:200]}" if keys else text[:300]
    return f"The weights do not fit the model built from {dict(net_config)}: {where}"


@dataclass
class Normalization:
    """The preprocessing a model was trained with: [0, 1] pixels, then (x - mean) / std."""

    mean: Tensor
    std: Tensor

    def apply(self, images01: Tensor) -> Tensor:
        return (images01 - self.mean) / self.std


def normalization_of(checkpoint: Mapping[str, Any]) -> Normalization:
    """The training split's mean/std saved by the datamodule (identity for ``none``)."""
    state = checkpoint.get(DATAMODULE_KEY)
    if not state:
        raise CheckpointError(
            f"The checkpoint has no '{DATAMODULE_KEY}' entry with the training mean/std, so "
            "inputs cannot be preprocessed like in training. Use a checkpoint written by "
            "train.py with fmnist.data.FashionMNISTDataModule."
        )
    if state.get("normalize") == "none":
        return Normalization(torch.tensor(0.0), torch.tensor(1.0))
    return Normalization(state["mean"].float(), state["std"].float())


def load_classifier(path: str | Path, net: Mapping | None = None) -> tuple[Any, Normalization]:
    """The trained ``ClassificationModule`` (in eval mode, on CPU) and its input normalization.

    ``net`` overrides the network config stored in the checkpoint (the weights must fit it).
    """
    from fmnist.training.module import ClassificationModule  # module imports Lightning: keep lazy

    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    net_config = dict(net) if net is not None else hparams["net"]
    hparams["net"] = net_config
    hparams.pop("_instantiator", None)
    module = ClassificationModule(**hparams)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: {describe_mismatch(exc, net_config)}. The checkpoint was trained with "
            f"model config {checkpoint['hyper_parameters']['net']}; use that config (or the "
            "checkpoint that belongs to your config)."
        ) from exc
    module.eval()
    return module, normalization_of(checkpoint)
