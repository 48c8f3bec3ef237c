"""The LightningModule: loss, optimizer and schedule, and the metrics of every stage.

The network, optimizer and scheduler arrive as Hydra configs and are built here (the network
only through ``fmnist.models.build_net``'s allowlist), so a checkpoint's hyperparameters are
plain data that ``fmnist.training.load`` rebuilds without running code from the file. The
module owns a :class:`~fmnist.models.preprocess.Classifier` (preprocessing with the training
statistics as buffers, network, TTA, temperature), which validation and test call on raw
images, exactly as analysis, prediction and export do.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Annotated, Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from pydantic import Field, NonNegativeInt, PositiveInt, SkipValidation
from torch import Tensor, nn
from torchmetrics import CatMetric, MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from fmnist.checkpoint import CHECKSUM_KEY, weights_checksum
from fmnist.config import DropProbability, build, checked
from fmnist.data import CLASS_NAMES, NUM_CLASSES
from fmnist.data.batches import EVAL_BATCH_SIZE
from fmnist.data.pixels import Normalization
from fmnist.errors import ConfigError
from fmnist.metrics import VAL_ACC_BEST, classification_report
from fmnist.models import build_net
from fmnist.models.preprocess import Classifier, Preprocess
from fmnist.training.calibration import calibration_metrics

#: Checkpoint entry with the state needed for an exact resume (see on_save_checkpoint).
RESUME_KEY = "fmnist_resume"


def _plain(config: Any) -> Any:
    """A resolved plain-Python copy of a DictConfig (or the value itself)."""
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    return config


def build_scheduler(
    config: Mapping[str, Any], optimizer: torch.optim.Optimizer, steps: int
) -> tuple[Any, bool]:
    """The scheduler of a Hydra partial config, and whether it is stepped every batch: a
    scheduler that takes the run's length (OneCycleLR's total_steps, cosine's T_max) gets
    ``steps`` optimizer steps and is stepped per batch; others per epoch."""
    factory = build(config)
    accepted = inspect.signature(factory.func).parameters
    length = {name: steps for name in ("total_steps", "T_max") if name in accepted}
    return factory(optimizer, **length), bool(length)


class ClassificationModule(L.LightningModule):
    """Trains any image classifier ``net`` with cross-entropy.

    Args (the others are explained in conf/module/classifier.yaml):
        net: config of the network (``_target_`` + plain arguments), or a built ``nn.Module``.
        optimizer, scheduler: Hydra partial configs of ``torch.optim`` classes; the scheduler's
            run length is filled in by :func:`build_scheduler` (None: a constant rate).
        tta_shift: also average over copies translated diagonally this many pixels either way.
        channels_last: the channels-last memory format (faster convs on CPU and GPU).
        compile: ``torch.compile`` in place, so checkpoint keys do not change.
    """

    @checked("module")
    def __init__(
        self,
        # Configs stay as given (DictConfig or dict): _plain resolves them.
        net: SkipValidation[Mapping | nn.Module],
        optimizer: SkipValidation[Mapping | None] = None,
        scheduler: SkipValidation[Mapping | None] = None,
        label_smoothing: DropProbability = 0.0,
        tta_flip: bool = False,
        channels_last: bool = False,
        num_classes: PositiveInt = NUM_CLASSES,
        compile: bool = False,
        normalize: Normalization = "global",
        flatten: bool = False,
        tta_shift: Annotated[NonNegativeInt, Field(le=4)] = 0,  # pixels
    ) -> None:
        super().__init__()
        network: nn.Module = net if isinstance(net, nn.Module) else build_net(_plain(net))
        # Every argument as plain data (a network given built as None): Lightning reads them
        # from this frame, and fmnist.training.load rebuilds the model from them.
        net = None if isinstance(net, nn.Module) else _plain(net)
        optimizer, scheduler = _plain(optimizer), _plain(scheduler) or None
        # logger=False: train.py logs the whole resolved run config to every logger.
        self.save_hyperparameters(logger=False)
        if channels_last:
            network = network.to(memory_format=torch.channels_last)
        if compile:
            network.compile()
        self.classifier = Classifier(
            network, Preprocess(normalize, flatten), tta_flip, channels_last, tta_shift
        )
        # A real input for Lightning's model summary, which counts FLOPs with it.
        self.example_input_array = torch.zeros(1, 28, 28, dtype=torch.uint8)
        self.val_loss = MeanMetric()
        self.train_metrics = MetricCollection(
            {"acc": MulticlassAccuracy(num_classes, average="micro")}, prefix="train/"
        )
        self.val_metrics = MetricCollection(
            {"acc": MulticlassAccuracy(num_classes, average="micro"),  # plain accuracy
             "f1_macro": MulticlassF1Score(num_classes, average="macro")}, prefix="val/"
        )  # fmt: skip
        self.val_acc_best = MaxMetric()
        # Every test image's outputs, gathered across processes (report, calibration).
        self.test_raw_logits, self.test_labels, self.test_predicted = (
            CatMetric(), CatMetric(), CatMetric()
        )  # fmt: skip
        #: Each test image's raw logits, label and predicted class, set by ``trainer.test``.
        self.test_outputs: dict[str, Tensor] = {}

    @property
    def net(self) -> nn.Module:
        """The network alone (analysis hooks its layers; it takes preprocessed inputs)."""
        return self.classifier.net

    def setup(self, stage: str) -> None:
        """Take the training split's mean/std from the data module before fitting; a
        checkpoint loaded afterwards (resume, test) brings its own."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "statistics"):
            self.classifier.preprocess.set_statistics(*datamodule.statistics)

    # ----- forward ------------------------------------------------------------------------

    def forward(self, images: Tensor) -> Tensor:
        """Evaluation logits of raw images (uint8 or 0-1): the one inference path."""
        return self.classifier(images)

    @torch.inference_mode()
    def predict_proba(
        self,
        images: Tensor,
        batch_size: int = EVAL_BATCH_SIZE,
        progress: bool = False,
        raw_logits: bool = False,
    ) -> Tensor:
        """Class probabilities (N, classes) of raw images, in eval mode, in batches on the
        module's device: the one prediction path of analysis, prediction and serving. With
        ``raw_logits``, the logits before temperature scaling instead (what it is fitted to)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be a positive integer.")
        batches: Any = images.split(batch_size)
        if progress and len(batches) > 1:
            from rich.progress import track

            batches = track(batches, description="Predicting", transient=True)
        output = self.classifier.raw_logits if raw_logits else self.classifier.probabilities
        was_training = self.training
        self.eval()
        try:
            outputs = [output(b.to(self.device)).float().cpu() for b in batches]
        finally:
            self.train(was_training)
        return torch.cat(outputs) if outputs else torch.empty(0, self.hparams.num_classes)

    def _loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy; of logits (members, N, classes), the sum of the members' own losses
        (``fmnist.models.Ensemble`` in training), so each trains as it would alone."""
        if logits.ndim == 3:
            return sum(self._loss(member, targets) for member in logits)
        return F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)

    @staticmethod
    def _labels(targets: Tensor) -> Tensor:
        """Class indices from index or one-hot targets."""
        return targets.argmax(1) if targets.ndim == 2 else targets

    # ----- steps --------------------------------------------------------------------------

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, targets = batch
        logits = self.classifier.net_logits(images)  # no TTA while training
        loss = self._loss(logits, targets)
        nets = 1
        if logits.ndim == 3:  # an ensemble's members; its train accuracy: of the mean probability
            nets, logits = len(logits), logits.float().softmax(-1).mean(0)
        # The check reads the loss on the host: free on CPU, a device sync elsewhere, so on
        # accelerators it runs every 50 steps only (a diverged loss stays non-finite).
        if (loss.device.type == "cpu" or batch_idx % 50 == 0) and not torch.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss.item()} at step {self.global_step}. Lower "
                "optimizer.lr, add a scheduler warm-up or check the inputs; the last good "
                "checkpoint is kept."
            )
        # Cheap per step: the loss per network as a tensor (averaged over the epoch as
        # train/loss_epoch) and a bare update() of the accuracy, computed once per epoch.
        self.log("train/loss", loss.detach() / nets, on_step=True, on_epoch=True, prog_bar=True)
        self.train_metrics.update(logits.detach(), self._labels(targets))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, targets = batch
        logits = self(images)
        self.val_loss(self._loss(logits, targets))
        self.val_metrics(logits, self._labels(targets))
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        # compute() of the epoch's collection: already synced across processes under DDP.
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log(VAL_ACC_BEST, self.val_acc_best.compute(), prog_bar=True)
        self.log("hp/val_acc_best", self.val_acc_best.compute())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, targets = batch
        raw = self.classifier.raw_logits(images)
        logits = raw / self.classifier.temperature  # what self(images) gives, computed once
        self.test_raw_logits.update(raw.float())
        self.test_predicted.update(logits.argmax(1))  # in the step's precision (bf16 too)
        self.test_labels.update(self._labels(targets))

    def on_test_epoch_end(self) -> None:
        """Log the test metrics (the classification report, calibration before and after
        temperature scaling, the temperature) and keep the outputs they came from."""
        outputs = {
            "raw_logits": self.test_raw_logits.compute(),
            "labels": self.test_labels.compute().long(),
            "predicted": self.test_predicted.compute().long(),
        }
        for metric in (self.test_raw_logits, self.test_labels, self.test_predicted):
            metric.reset()
        self.test_outputs = outputs
        names = CLASS_NAMES[: self.hparams.num_classes]
        report = classification_report(outputs["predicted"], outputs["labels"], names)
        scalars = {k: v for k, v in report.items() if k.startswith("test/")}
        scalars["hp/test_acc"] = report["test/acc"]
        scalars |= {f"test_class_f1/{k}": row["f1"] for k, row in report["per_class"].items()}
        # batch_size=1: a value logged once is stored exactly (Lightning multiplies by it).
        self.log_dict(scalars, batch_size=1)
        temperature = self.classifier.temperature
        self.log("temperature", temperature, batch_size=1)
        raw, labels = outputs["raw_logits"], outputs["labels"]
        for suffix, scale in (("", 1.0), ("_calibrated", float(temperature))):
            for name, value in calibration_metrics(raw, labels, scale).items():
                # float64, as computed: a Python float would be logged as float32
                self.log(f"test/{name}{suffix}", torch.tensor(value, dtype=torch.float64),
                         batch_size=1)  # fmt: skip

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
        checkpoint[CHECKSUM_KEY] = weights_checksum(checkpoint["state_dict"])
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
        steps = int(self.trainer.estimated_stepping_batches)
        scheduler, per_step = build_scheduler(self.hparams.scheduler, optimizer, steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step" if per_step else "epoch"},
        }
