"""Preprocessing travels with the model: raw images in, model input out, in one ``nn.Module``.

:class:`Preprocess` holds the training split's mean/std as buffers, so every checkpoint and
every export carries the exact preprocessing its weights were trained with.
:class:`Classifier` joins it to the network with the run's flip test-time augmentation and
its temperature (calibrated probabilities): validation, test, the analysis callbacks,
``analyze.py task=model``, prediction and export all call it, so they agree to the last
digit on the same images. This is the one place images become model inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fmnist.config import checked
from fmnist.data.classes import IMAGE_SIZE
from fmnist.data.pixels import Normalization, to_unit_range


class Preprocess(nn.Module):
    """Raw images -> model inputs: scale to [0, 1], standardize, flatten if the model wants it.

    The buffers' shapes follow ``normalize`` (``()`` for global, ``(28, 28)`` per pixel), so a
    module built from a checkpoint's hyperparameters loads that checkpoint's statistics.
    """

    @checked("module")
    def __init__(self, normalize: Normalization = "global", flatten: bool = False) -> None:
        super().__init__()
        shape = (IMAGE_SIZE, IMAGE_SIZE) if normalize == "per_pixel" else ()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.flatten = flatten

    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Copy the training split's statistics in (shapes are checked by ``copy_``)."""
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, images: Tensor) -> Tensor:
        x = (to_unit_range(images) - self.mean) / self.std
        return x.flatten(1) if self.flatten else x


class Classifier(nn.Module):
    """Preprocessing + network + flip TTA + temperature: raw images in, logits out.

    Exported as it is (TorchScript/ONNX), so an export needs nothing of this project.
    """

    def __init__(
        self,
        net: nn.Module,
        preprocess: Preprocess,
        tta_flip: bool = False,
        channels_last: bool = False,
        tta_shift: int = 0,
    ) -> None:
        super().__init__()
        self.net, self.preprocess = net, preprocess
        self.tta_flip, self.channels_last, self.tta_shift = tta_flip, channels_last, tta_shift
        # Temperature scaling (fmnist.training.calibration): 1 until fitted after training.
        self.register_buffer("temperature", torch.ones(()))

    def net_logits(self, images: Tensor) -> Tensor:
        """One pass of the network on raw images, without TTA (training uses this)."""
        x = self.preprocess(images)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # TorchScript compiles forward's code only; this property is for Python callers (OOD).
    __jit_unused_properties__ = ["views"]

    @property
    def views(self) -> int:
        """Network passes per evaluated batch: 2 with flip TTA, times 3 with shift TTA."""
        return (2 if self.tta_flip else 1) * (3 if self.tta_shift else 1)

    def raw_logits(self, images: Tensor) -> Tensor:
        """Evaluation logits of raw images, before temperature scaling: the mean over the
        TTA views (the image and its mirror with ``tta_flip``; each also translated by
        ``tta_shift`` pixels up-left and down-right, as airbench's TTA, with ``tta_shift``).
        Written without comprehensions so that TorchScript compiles it."""
        logits = self._summed_over_shifts(images)
        views = 1
        if self.tta_flip:
            logits = logits + self._summed_over_shifts(images.flip(-1))
            views = 2
        return logits / (views * (3 if self.tta_shift > 0 else 1))

    def _summed_over_shifts(self, images: Tensor) -> Tensor:
        """The logits of the image, plus with ``tta_shift`` those of its copies moved
        diagonally by that many pixels either way (the background, 0 in raw images, fills in)."""
        logits = self.net_logits(images)
        s = self.tta_shift
        if s > 0:
            padded = torch.nn.functional.pad(images, [s, s, s, s])
            logits = logits + self.net_logits(padded[..., 2 * s :, 2 * s :])
            logits = logits + self.net_logits(padded[..., : -2 * s, : -2 * s])
        return logits

    def forward(self, images: Tensor) -> Tensor:
        """Calibrated logits: the raw logits divided by the temperature (the same argmax).
        Their softmax is the probability every output of the project reports."""
        return self.raw_logits(images) / self.temperature

    def probabilities(self, images: Tensor) -> Tensor:
        return self(images).softmax(-1)
