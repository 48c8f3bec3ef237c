"""Robustness: after testing, the tested weights on Fashion-MNIST-C, for every run of a sweep."""

from __future__ import annotations

import logging

import lightning as L
import torch
from pydantic import PositiveInt

from fmnist.analysis.importance import evaluation_subset
from fmnist.analysis.robustness import evaluate_robustness
from fmnist.callbacks.guest import Guest
from fmnist.callbacks.outputs import run_dir
from fmnist.config import checked
from fmnist.data.batches import EVAL_BATCH_SIZE
from fmnist.files import write_json
from fmnist.metrics import MEAN_CORRUPTION_ACC

log = logging.getLogger(__name__)


class Robustness(Guest):
    """At the end of testing, the accuracy of the tested weights under every corruption of
    ``fmnist.data.corruptions`` on ``samples`` seeded test images (None: all 10,000), as
    ``analyze.py task=robustness`` computes it: ``robustness.json`` in the run directory, and
    the mean corruption accuracy logged, so ``metrics.json`` and the sweep summary carry it.
    Off unless ``enabled`` (``callbacks.robustness.enabled=true``): it predicts 56 x
    ``samples`` images after every run.
    """

    @checked("callbacks.robustness")  # now, not after training
    def __init__(
        self,
        enabled: bool = False,
        samples: PositiveInt | None = 2000,
        seed: int = 0,
        batch_size: PositiveInt = EVAL_BATCH_SIZE,
    ) -> None:
        self.enabled, self.samples, self.seed, self.batch_size = enabled, samples, seed, batch_size

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.enabled or not trainer.is_global_zero:
            return
        data = trainer.datamodule.split("test")
        index = evaluation_subset(len(data), self.samples, self.seed).to(data.labels.device)
        result = evaluate_robustness(
            module, data.images[index], data.labels[index], self.seed, self.batch_size
        )
        write_json(run_dir(trainer) / "robustness.json", result)
        # Logged in float64, as computed: trainer.test returns it, and so metrics.json has it.
        mean = torch.tensor(result["mean_corruption_acc"], dtype=torch.float64)
        module.log(MEAN_CORRUPTION_ACC, mean, batch_size=1, rank_zero_only=True)
        log.info(
            "Mean corruption accuracy %.2f%% (clean %.2f%%, %d images, %.1f s)",
            100 * result["mean_corruption_acc"],
            100 * result["clean_acc"],
            result["images"],
            result["seconds"],
        )
