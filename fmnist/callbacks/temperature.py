"""TemperatureScaling: calibrate the probabilities of the weights that are about to be tested."""

from __future__ import annotations

import logging
from typing import Literal

import lightning as L
from pydantic import PositiveInt

from fmnist.callbacks.guest import Guest
from fmnist.config import checked
from fmnist.data.batches import EVAL_BATCH_SIZE
from fmnist.training.calibration import fit_temperature
from fmnist.training.load import store_temperature

log = logging.getLogger(__name__)


class TemperatureScaling(Guest):
    """At the start of testing (the best checkpoint's weights are loaded by then), fit the
    temperature on the ``split`` images by minimizing their NLL, set it on the model and
    store it in the tested checkpoint, so prediction, export and serving report the same
    calibrated probabilities as the run's test metrics. The predicted classes do not change.
    """

    @checked("callbacks.temperature_scaling")
    def __init__(
        self,
        split: Literal["val"] = "val",  # fitting on the test split would leak the test set
        batch_size: PositiveInt = EVAL_BATCH_SIZE,
    ) -> None:
        self.split, self.batch_size = split, batch_size

    def on_test_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        data = trainer.datamodule.split(self.split)
        raw = module.predict_proba(data.images, self.batch_size, raw_logits=True)
        temperature = fit_temperature(raw, data.labels.cpu())
        log.info("Temperature fitted on %d %s images: %.3f", len(raw), self.split, temperature)
        # The checkpoint first: if writing it fails, the test stays at the file's temperature.
        if trainer.ckpt_path and trainer.is_global_zero:
            store_temperature(trainer.ckpt_path, temperature)
        module.classifier.temperature.fill_(temperature)
