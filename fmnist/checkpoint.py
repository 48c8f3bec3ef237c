"""The checkpoint format: reading a file without running pickled code, the weights' checksum
and their checks. Building a model from a checkpoint (the allowlist of its hyperparameters)
is ``fmnist.training.load``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fmnist.errors import CheckpointError

log = logging.getLogger(__name__)

#: Checkpoint entry with the SHA-256 of the weights, checked when a checkpoint is loaded.
CHECKSUM_KEY = "fmnist_weights_sha256"
#: Where a checkpoint keeps the fitted temperature (a buffer of the model's Classifier).
TEMPERATURE_KEY = "classifier.temperature"


def weights_checksum(state_dict: Mapping[str, Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every tensor, in key order:
    flipped bits in a stored checkpoint change it."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's content, read without executing pickled code, checked for shape."""
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
    except Exception as exc:  # arbitrary bytes make the unpickler raise almost anything
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: {detail[:200]}). It is "
            "truncated, corrupt or not a PyTorch checkpoint; use another .ckpt file of the run's "
            "checkpoints/ directory (resuming with ckpt_path=last falls back to the newest "
            "readable one), or train again."
        ) from exc
    weights = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if not isinstance(weights, Mapping):
        raise CheckpointError(
            f"{path} holds no model weights ('state_dict'): it is not a checkpoint written "
            "by train.py. Pass a .ckpt file from a run's checkpoints/ directory."
        )
    return dict(checkpoint)


def weights_mismatch(expected: Mapping[str, Tensor], stored: Mapping[str, Any]) -> str | None:
    """The first difference between two state dicts' names and shapes, in words (None: fit)."""
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k not in expected]
    if missing or unexpected:
        if any(k.startswith("net.") for k in unexpected):
            return (
                "it was written by an older fmnist, before the preprocessing moved into the "
                "model ('net.*' weights); train it again with this version"
            )
        return f"the layers differ: missing {missing[:3]}, unexpected {unexpected[:3]}"
    for name, tensor in expected.items():
        value = stored[name]
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(tensor.shape):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            return f"layer {name} holds {shape} where the model has {tuple(tensor.shape)}"
    return None


def check_weights(checkpoint: Mapping[str, Any], path: str | Path) -> None:
    """Refuse weights that are not finite or whose checksum (when stored) does not match."""
    state = checkpoint["state_dict"]
    for name, value in state.items():
        if isinstance(value, Tensor) and value.is_floating_point() and not value.isfinite().all():
            raise CheckpointError(
                f"{path}: the weights of {name} are NaN or infinite; use another checkpoint "
                "of the run (e.g. an earlier epoch's) or train again."
            )
    stored = checkpoint.get(CHECKSUM_KEY)
    if stored is None:
        log.warning("%s has no weights checksum (written by an older fmnist)", path)
    elif stored != weights_checksum(state):
        raise CheckpointError(
            f"{path}: the weights do not match the checksum stored with them: the file was "
            "changed or damaged after it was written. Use another checkpoint of the run."
        )
