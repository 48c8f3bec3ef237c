"""ActivationCapture: feature-map grids of a network's layers at fit end (and every N epochs)."""

from __future__ import annotations

import logging
from typing import Literal

import lightning as L
from pydantic import NonNegativeInt, PositiveInt

from fmnist.analysis.activations import capture_activations, channel_statistics, one_per_class
from fmnist.callbacks.guest import Guest
from fmnist.callbacks.outputs import model_inputs, run_dir, save_figure
from fmnist.config import checked
from fmnist.data import CLASS_NAMES
from fmnist.files import write_json
from fmnist.plots.model_figures import feature_map_grid

log = logging.getLogger(__name__)


class ActivationCapture(Guest):
    """Capture layer outputs for a fixed, seeded set of images (``per_class`` of each class of
    ``split``): a feature-map grid per layer as PNG (``<run>/activations/``) and TensorBoard
    figure, and per-channel statistics (mean, zero share, dead channels) in ``stats.json``.

    The options: conf/callbacks/default.yaml. A layer whose output is neither (N, units) nor
    (N, channels, H, W) is left out with one log line.
    """

    @checked("callbacks.activation_capture")
    def __init__(
        self,
        layers: list[str] | None = None,
        every_n_epochs: NonNegativeInt = 0,
        per_class: PositiveInt = 1,
        split: Literal["val", "test"] = "val",
        seed: int = 0,
        channels: PositiveInt = 8,
    ) -> None:
        self.layers, self.every_n_epochs, self.per_class = layers, every_n_epochs, per_class
        self.split, self.seed, self.channels = split, seed, channels

    def capture(self, trainer: L.Trainer, module: L.LightningModule, name: str) -> dict:
        data = trainer.datamodule.split(self.split)
        index = one_per_class(data.labels, self.per_class, self.seed)
        images = model_inputs(module, data.images[index])
        activations = capture_activations(module.net, images, self.layers)
        titles = [CLASS_NAMES[int(label)] for label in data.labels[index]]
        folder = run_dir(trainer, "activations")
        stats = {}
        for layer, output in activations.items():
            output = output.cpu()
            stats[layer] = channel_statistics(output)
            if output.ndim == 4:  # feature maps; (N, units) outputs get statistics only
                figure = feature_map_grid(
                    images.cpu(), output, titles, range(min(self.channels, output.shape[1])), layer
                )
                save_figure(trainer, figure, folder / f"{name}_{layer}.png", f"activations/{layer}")
        write_json(folder / f"{name}_stats.json", stats)
        log.info("Activations of %s written to %s", list(activations), folder)
        return stats

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and trainer.is_global_zero:
            self.capture(trainer, module, f"epoch{epoch:03d}")

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.capture(trainer, module, "final")
