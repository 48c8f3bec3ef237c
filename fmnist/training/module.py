"""The LightningModule: loss, optimizer and schedule, and the metrics of every stage.

The network, optimizer and scheduler arrive as Hydra configs (plain dicts with ``_target_``)
and are built here. The checkpoint's hyperparameters are therefore plain data: any
checkpoint rebuilds its own model with ``ClassificationModule.load_from_checkpoint(path)``
and loads with ``weights_only=True`` (no pickled objects).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from fmnist.data import CLASS_NAMES
from fmnist.errors import ConfigError
from fmnist.runs.config import build

# Metric names, defined once. The monitored metric (checkpointing, sweeps) is MONITOR.
MONITOR = "val/acc"
MONITOR_BEST = "val/acc_best"
HPARAM_METRICS = {"hp/val_acc_best": MONITOR_BEST, "hp/test_acc": "test/acc"}
#: Checkpoint entry with the state needed for an exact resume (see on_save_checkpoint).
RESUME_KEY = "fmnist_resume"


def _plain(config: Any) -> Any:
    """A resolved plain-Python copy of a DictConfig (or the value itself)."""
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    return config


def _scalar_metrics(num_classes: int, prefix: str, full: bool) -> MetricCollection:
    """Accuracy (plain, i.e. micro) and macro F1; with ``full`` also macro and weighted
    precision/recall/F1 (the weighted ones are the study's and scikit-learn's "weighted avg")."""
    metrics: dict[str, Any] = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1_macro": MulticlassF1Score(num_classes, average="macro"),
    }
    if full:
        for average in ("macro", "weighted"):
            metrics[f"precision_{average}"] = MulticlassPrecision(num_classes, average=average)
            metrics[f"recall_{average}"] = MulticlassRecall(num_classes, average=average)
        metrics["f1_weighted"] = MulticlassF1Score(num_classes, average="weighted")
    return MetricCollection(metrics, prefix=prefix)


class ClassificationModule(L.LightningModule):
    """Trains any image classifier ``net`` with cross-entropy.

    Args:
        net: Hydra config of the network (``_target_`` + arguments), or a built ``nn.Module``.
        optimizer: Hydra partial config of a ``torch.optim`` optimizer.
        scheduler: Hydra partial config of a ``torch.optim.lr_scheduler`` scheduler, or
            None/empty for a constant learning rate. Schedulers that need the run's length
            (``total_steps`` of OneCycleLR, ``T_max`` of CosineAnnealingLR) get it filled in
            and are stepped every batch.
        label_smoothing: cross-entropy label smoothing.
        tta_flip: at validation and test, average the logits of each image and its mirror.
        channels_last: use the channels-last memory format (faster convs on CPU and GPU).
        compile: compile the network with ``torch.compile`` (in place, so checkpoint keys do
            not change). Pays off on GPUs for long runs; the compile time counts in the run.
    """

    def __init__(
        self,
        net: Mapping | nn.Module,
        optimizer: Mapping | None = None,
        scheduler: Mapping | None = None,
        label_smoothing: float = 0.0,
        tta_flip: bool = False,
        channels_last: bool = False,
        num_classes: int = len(CLASS_NAMES),
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"module.label_smoothing={label_smoothing} must be in [0, 1).")
        net, optimizer, scheduler = _plain(net), _plain(optimizer), _plain(scheduler)
        self.save_hyperparameters(
            {
                "net": net if isinstance(net, Mapping) else None,
                "optimizer": optimizer,
                "scheduler": scheduler or None,
                "label_smoothing": label_smoothing,
                "tta_flip": tta_flip,
                "channels_last": channels_last,
                "num_classes": num_classes,
                "compile": compile,
            },
            logger=False,  # train.py logs the whole resolved run config once, with metrics
        )
        self.net: nn.Module = net if isinstance(net, nn.Module) else build(net)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net.compile()
        self.val_loss = MeanMetric()
        self.train_metrics = MetricCollection(
            {"acc": MulticlassAccuracy(num_classes, average="micro")}, prefix="train/"
        )
        self.val_metrics = _scalar_metrics(num_classes, "val/", full=False)
        self.val_acc_best = MaxMetric()
        self.test_metrics = _scalar_metrics(num_classes, "test/", full=True)
        self.test_per_class = MetricCollection(
            {
                "precision": MulticlassPrecision(num_classes, average=None),
                "recall": MulticlassRecall(num_classes, average=None),
                "f1": MulticlassF1Score(num_classes, average=None),
            }
        )
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        #: Filled at the end of ``trainer.test``: overall, per-class and confusion matrix.
        self.test_report: dict[str, Any] = {}

    # ----- forward ------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        if self.hparams.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def predict_logits(self, x: Tensor) -> Tensor:
        """Logits for evaluation: with flip test-time augmentation when configured."""
        if self.hparams.tta_flip and x.ndim == 4:
            return 0.5 * (self(x) + self(x.flip(-1)))
        return self(x)

    def _loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)

    @staticmethod
    def _labels(targets: Tensor) -> Tensor:
        """Class indices from index or one-hot targets."""
        return targets.argmax(1) if targets.ndim == 2 else targets

    # ----- steps --------------------------------------------------------------------------

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, targets = batch
        logits = self(x)
        loss = self._loss(logits, targets)
        # The check reads the loss on the host: free on CPU, a device sync elsewhere, so on
        # accelerators it runs every 50 steps only (a diverged loss stays non-finite).
        if (loss.device.type == "cpu" or batch_idx % 50 == 0) and not torch.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss.item()} at step {self.global_step}. Lower "
                "optimizer.lr, add a scheduler warm-up or check the inputs; the last good "
                "checkpoint is kept."
            )
        # Cheap bookkeeping per step (it counts: a CPU step of the speedrun is ~50 ms): the
        # loss as a tensor (Lightning averages it over the epoch as train/loss_epoch), and a
        # bare update() of the accuracy, which Lightning computes once at the epoch's end.
        # Calling metric objects instead ran a second computation and a state copy per step.
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=True, prog_bar=True)
        self.train_metrics.update(logits.detach(), self._labels(targets))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, targets = batch
        logits = self.predict_logits(x)
        self.val_loss(self._loss(logits, targets))
        self.val_metrics(logits, self._labels(targets))
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        # compute() of the epoch's collection: already synced across processes under DDP.
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log(MONITOR_BEST, self.val_acc_best.compute(), prog_bar=True)
        self.log("hp/val_acc_best", self.val_acc_best.compute())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, targets = batch
        logits = self.predict_logits(x)
        labels = self._labels(targets)
        self.test_metrics(logits, labels)
        self.test_per_class.update(logits, labels)
        self.test_confusion.update(logits, labels)
        self.log_dict(self.test_metrics, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        per_class = {k: v.tolist() for k, v in self.test_per_class.compute().items()}
        confusion = self.test_confusion.compute()
        self.test_report = {
            "overall": {
                name.removeprefix("test/"): float(value)
                for name, value in self.test_metrics.compute().items()
            },
            "per_class": {
                name: {
                    "precision": per_class["precision"][i],
                    "recall": per_class["recall"][i],
                    "f1": per_class["f1"][i],
                    "support": int(confusion[i].sum()),
                }
                for i, name in enumerate(CLASS_NAMES[: self.hparams.num_classes])
            },
            "confusion_matrix": confusion.tolist(),
        }
        self.log("hp/test_acc", self.test_metrics["acc"].compute())
        for i, name in enumerate(CLASS_NAMES[: self.hparams.num_classes]):
            self.log(f"test_class_f1/{name}", per_class["f1"][i])
        self.test_per_class.reset()
        self.test_confusion.reset()

    # ----- exact resumption ----------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what Lightning does not, so a resumed run continues exactly: the best
        validation accuracy so far (metric states are not part of ``state_dict``) and torch's
        random number generators (dropout, augmentation and the shuffling sampler draw from
        them). Refuse to write a checkpoint of non-finite weights: the last good one stays."""
        for name, parameter in self.named_parameters():
            if not torch.isfinite(parameter).all():
                raise FloatingPointError(
                    f"The weights of {name} became NaN or infinite at step {self.global_step}; "
                    "no checkpoint is written over the last good one. Lower optimizer.lr, add "
                    "a scheduler warm-up or check the inputs."
                )
        checkpoint[RESUME_KEY] = {
            "val_acc_best": self.val_acc_best.max_value.detach().clone(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(RESUME_KEY)
        if not state or self._trainer is None:  # load_from_checkpoint: leave global RNG alone
            return
        self.val_acc_best.max_value = state["val_acc_best"].to(self.val_acc_best.max_value)
        if self.trainer.state.fn == "fit":
            torch.set_rng_state(state["torch_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])

    # ----- optimization -------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        if not self.hparams.optimizer:
            raise ValueError("ClassificationModule needs an optimizer config to train.")
        optimizer = build(self.hparams.optimizer)(params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler_factory = build(self.hparams.scheduler)
        signature = inspect.signature(scheduler_factory.func)
        steps = int(self.trainer.estimated_stepping_batches)
        length = {name: steps for name in ("total_steps", "T_max") if name in signature.parameters}
        scheduler = scheduler_factory(optimizer, **length)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step" if length else "epoch"},
        }
