"""PermutationImportance: after fit, how much each layer and channel matters (see
fmnist.analysis.importance for the method and why whole layers are not shuffled)."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

import lightning as L
from pydantic import Field, PositiveInt

from fmnist.analysis.importance import (
    IMPORTANCE_HEADER,
    evaluation_subset,
    importance_rows,
    permutation_importance,
)
from fmnist.callbacks.guest import Guest
from fmnist.callbacks.outputs import model_inputs, run_dir, save_figure
from fmnist.config import checked
from fmnist.files import write_json
from fmnist.plots.model_figures import importance_bars
from fmnist.tables import print_table

log = logging.getLogger(__name__)


class PermutationImportance(Guest):
    """At fit end (final weights), permutation importance of the channels (or units) of
    ``layers`` (default: ``fmnist.analysis.stages.default_layers``, e.g. the CNN's conv blocks
    and dense layer) on ``samples`` seeded images of ``split`` (None: the whole split); a
    layer it cannot permute is left out with one log line.
    Prints a table, writes ``importance.json`` and ``importance.png`` into the run directory
    and logs the figure to TensorBoard.
    """

    @checked("callbacks.permutation_importance")
    def __init__(
        self,
        split: Literal["val", "test"] = "val",
        samples: PositiveInt | None = 500,
        n_repeats: PositiveInt = 3,
        share: Annotated[float, Field(gt=0, le=1)] = 0.25,  # of a layer's channels, jointly
        seed: int = 0,
        layers: list[str] | None = None,
    ) -> None:
        self.split, self.samples, self.n_repeats = split, samples, n_repeats
        self.share, self.seed, self.layers = share, seed, layers

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        start = time.perf_counter()
        data = trainer.datamodule.split(self.split)
        index = evaluation_subset(len(data), self.samples, self.seed)
        inputs = model_inputs(module, data.images[index])
        labels, was_training = data.labels[index].to(module.device), module.net.training
        result = permutation_importance(
            module.net, inputs, labels, self.layers, self.n_repeats, self.share, self.seed
        )
        module.net.train(was_training)
        result["split"] = self.split
        result["seconds"] = round(time.perf_counter() - start, 2)
        folder = run_dir(trainer)
        write_json(folder / "importance.json", result)
        if not result["layers"]:
            return
        figure = importance_bars(result)
        save_figure(trainer, figure, folder / "importance.png", "permutation_importance")
        title = f"Permutation importance ({self.split}, {len(index)} images, final weights)"
        print_table(title, IMPORTANCE_HEADER, importance_rows(result), left={"layer"})
        log.info("Permutation importance took %.1f s", result["seconds"])
