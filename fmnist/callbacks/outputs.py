"""Where the explanation callbacks write: PNG/JSON in the run directory, figures to every logger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure

from fmnist.data import IMAGE_SIZE
from fmnist.files import write_figure


def run_dir(trainer: L.Trainer, subdir: str = "") -> Path:
    """The run directory (``trainer.default_root_dir``, i.e. ``paths.output_dir``)."""
    path = Path(trainer.default_root_dir) / subdir
    path.mkdir(parents=True, exist_ok=True)
    return path


def tensorboard(loggers: Sequence[Logger]) -> Any | None:
    """The ``SummaryWriter`` of a TensorBoard logger among ``loggers``, if there is one (for
    what only TensorBoard shows: text, the embedding projector)."""
    return next((lg.experiment for lg in loggers if isinstance(lg, TensorBoardLogger)), None)


def log_figure(
    loggers: Sequence[Logger], figure: Figure, path: Path, tag: str, step: int | None = None
) -> None:
    """Give ``figure``, already written as the PNG ``path``, to every logger that keeps
    images: TensorBoard's figure, an MLflow artifact in the folder of ``tag`` (``activations/``
    as in the run directory), a wandb image under ``tag``. The CSV logger keeps none."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, figure, global_step=step, close=False)
            logger.experiment.flush()
        elif isinstance(logger, MLFlowLogger):
            folder = str(Path(tag).parent)
            logger.experiment.log_artifact(
                logger.run_id, str(path), None if folder == "." else folder
            )
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[str(path)], step=step)


def save_figure(trainer: L.Trainer, figure: Figure, path: Path, tag: str) -> Path:
    """Write ``figure`` as a PNG, give it to every logger of the run under ``tag`` at the
    current epoch, close it."""
    write_figure(path, figure, dpi=100)
    log_figure(trainer.loggers, figure, path, tag, trainer.current_epoch)
    plt.close(figure)
    return path


def model_inputs(module: Any, images: Any) -> Any:
    """Raw images -> the network's inputs through the model's own preprocessing, as
    (N, 1, 28, 28) images (our MLP takes images too; input regions need them)."""
    x = module.classifier.preprocess(images.to(module.device))
    return x.view(len(x), 1, IMAGE_SIZE, IMAGE_SIZE) if x.ndim == 2 else x
