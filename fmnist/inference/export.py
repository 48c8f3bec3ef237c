"""Export a trained classifier to TorchScript or ONNX, preprocessing included:
`python -m fmnist.inference.export ckpt=PATH format=onnx|torchscript` (see conf/export.yaml).

The exported model takes raw images, (N, 28, 28) or (N, 1, 28, 28), uint8 0-255 or floats
in [0, 1], applies the training split's mean/std and the checkpoint's flip test-time
augmentation, and returns logits (N, 10): nothing of this project is needed to use it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from fmnist.data import IMAGE_SIZE
from fmnist.errors import ConfigError
from fmnist.inference.checkpoint import load_classifier
from fmnist.runs.files import ensure_writable_dir

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class ExportableClassifier(nn.Module):
    """The network with its input preprocessing: raw images in, logits out."""

    def __init__(self, net: nn.Module, mean: Tensor, std: Tensor, tta_flip: bool) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())
        self.tta_flip = tta_flip

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = (x - self.mean) / self.std
        logits = self.net(x)
        if self.tta_flip:
            logits = 0.5 * (logits + self.net(x.flip(-1)))
        return logits


def exportable(ckpt: str | Path) -> ExportableClassifier:
    """The checkpoint's classifier wrapped with its preprocessing, in eval mode."""
    module, normalization = load_classifier(ckpt)
    wrapper = ExportableClassifier(
        module.net, normalization.mean, normalization.std, bool(module.hparams.tta_flip)
    )
    return wrapper.eval()


def export_torchscript(model: ExportableClassifier, path: str | Path) -> Path:
    """Scripted (not traced), so the uint8/float and 3-/4-D input branches both survive."""
    scripted = torch.jit.script(model)
    scripted.save(str(path))
    return Path(path)


def export_onnx(model: ExportableClassifier, path: str | Path, input_dtype: str = "uint8") -> Path:
    """ONNX with a dynamic batch axis; input ``images`` (N, 28, 28) of ``input_dtype``."""
    if input_dtype not in ("uint8", "float"):
        raise ConfigError(f"input={input_dtype!r} must be uint8 or float (0-1 images).")
    example = (
        torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
        if input_dtype == "uint8"
        else torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE)
    )
    # The TorchScript-based exporter: the dynamo one needs onnxscript, which we do not ship.
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return Path(path)


def export(cfg: DictConfig) -> Path:
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format!r} must be one of {sorted(FORMATS)}.")
    output = Path(cfg.output or Path(cfg.paths.output_dir) / f"model{FORMATS[cfg.format]}")
    ensure_writable_dir(output.expanduser().parent, "export output directory")
    model = exportable(cfg.ckpt)
    if cfg.format == "onnx":
        path = export_onnx(model, output, cfg.input)
    else:
        path = export_torchscript(model, output)
    log.info("Exported %s to %s", cfg.ckpt, path)
    return path


if __name__ == "__main__":  # python -m fmnist.inference.export, the same as fmnist-export
    from fmnist.runs.cli import export_main

    export_main()
