"""LearningCurves: train vs validation loss and accuracy per epoch, and the final gap."""

from __future__ import annotations

import logging

import lightning as L

from fmnist.callbacks.guest import Guest
from fmnist.callbacks.outputs import run_dir, save_figure
from fmnist.files import write_json
from fmnist.plots.model_figures import generalisation_gap, learning_curves

log = logging.getLogger(__name__)

#: Figure key -> logged metric names (first found wins; ``train/loss`` is logged per step
#: and per epoch, so Lightning names the epoch value ``train/loss_epoch``).
SOURCES = {
    "train/loss": ("train/loss_epoch", "train/loss"),
    "train/acc": ("train/acc",),
    "val/loss": ("val/loss",),
    "val/acc": ("val/acc",),
}


class LearningCurves(Guest):
    """Collect the epoch metrics as training goes; at fit end write ``learning_curves.png``
    and ``learning_curves.json`` into the run directory, log the figure to TensorBoard and
    state the final generalisation gap (train minus validation accuracy; the train value is
    measured with dropout and augmentation on, as it was logged)."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {key: [] for key in SOURCES}

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Validation has run by now, and the train epoch metrics are ready.
        metrics = trainer.callback_metrics
        for key, names in SOURCES.items():
            value = next((metrics[n] for n in names if n in metrics), None)
            if value is not None:
                self.history[key].append(float(value))

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not any(self.history.values()):
            return
        folder = run_dir(trainer)
        gap = generalisation_gap(self.history)
        write_json(
            folder / "learning_curves.json", {"history": self.history, "generalisation_gap": gap}
        )
        figure = learning_curves(self.history)
        save_figure(trainer, figure, folder / "learning_curves.png", "learning_curves")
        if gap is not None:
            log.info("Final generalisation gap (train acc - val acc): %.2f pp", 100 * gap)

    def state_dict(self) -> dict:
        return {"history": self.history}  # a resumed run keeps its earlier epochs

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = state_dict["history"]
