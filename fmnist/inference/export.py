"""Export a trained classifier to TorchScript or ONNX, preprocessing included:
`python -m fmnist.cli export ckpt=PATH format=onnx|torchscript` (see conf/export.yaml).

The exported model is the checkpoint's ``Classifier`` itself: it takes raw images,
(N, 28, 28) or (N, 1, 28, 28), uint8 0-255 or floats in [0, 1], applies the training split's
mean/std and the checkpoint's flip test-time augmentation, and returns logits (N, 10):
nothing of this project is needed to use it.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from fmnist.data import IMAGE_SIZE
from fmnist.errors import ConfigError
from fmnist.files import atomic_write_bytes, check_output_spares_inputs, ensure_writable_dir
from fmnist.models.preprocess import Classifier
from fmnist.training.load import load_classifier

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def exportable(ckpt: str | Path) -> Classifier:
    """The checkpoint's classifier, preprocessing and TTA included, in eval mode: the very
    module that validation, test and prediction call."""
    module, _ = load_classifier(ckpt)
    return module.classifier.eval()


def export_torchscript(model: Classifier, path: str | Path) -> Path:
    """Scripted (not traced), so the uint8/float and 3-/4-D input branches both survive."""
    buffer = io.BytesIO()  # in memory first: torch aborts the process on a full disk
    torch.jit.save(torch.jit.script(model), buffer)
    return atomic_write_bytes(path, buffer.getbuffer())


def export_onnx(model: Classifier, path: str | Path, input_dtype: str = "uint8") -> Path:
    """ONNX with a dynamic batch axis; input ``images`` (N, 28, 28) of ``input_dtype``."""
    if input_dtype not in ("uint8", "float"):
        raise ConfigError(f"input={input_dtype!r} must be uint8 or float (0-1 images).")
    dtype = torch.uint8 if input_dtype == "uint8" else torch.float32
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, dtype=dtype)
    # The TorchScript-based exporter: the dynamo one needs onnxscript, which we do not ship.
    buffer = io.BytesIO()  # in memory first, then written atomically
    torch.onnx.export(
        model,
        (example,),
        buffer,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return atomic_write_bytes(path, buffer.getbuffer())


def export(cfg: DictConfig) -> Path:
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format!r} must be one of {sorted(FORMATS)}.")
    output = Path(cfg.output or Path(cfg.paths.output_dir) / f"model{FORMATS[cfg.format]}")
    check_output_spares_inputs(output, [("checkpoint", cfg.ckpt)])
    ensure_writable_dir(output.expanduser().parent, "export output directory")
    model = exportable(cfg.ckpt)
    if cfg.format == "onnx":
        path = export_onnx(model, output, cfg.input)
    else:
        path = export_torchscript(model, output)
    log.info("Exported %s to %s", cfg.ckpt, path)
    return path
