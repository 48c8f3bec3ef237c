"""Where the explanation callbacks write: PNG/JSON in the run directory, figures to TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure

from fmnist.data import IMAGE_SIZE
from fmnist.files import write_figure


def run_dir(trainer: L.Trainer, subdir: str = "") -> Path:
    """The run directory (``trainer.default_root_dir``, i.e. ``paths.output_dir``)."""
    path = Path(trainer.default_root_dir) / subdir
    path.mkdir(parents=True, exist_ok=True)
    return path


def tensorboard(trainer: L.Trainer) -> Any | None:
    """The ``SummaryWriter`` of the run's TensorBoard logger, if there is one."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def save_figure(trainer: L.Trainer, figure: Figure, path: Path, tag: str, step: int) -> Path:
    """Write ``figure`` as a PNG and to TensorBoard under ``tag``, then close it."""
    write_figure(path, figure, dpi=100)
    writer = tensorboard(trainer)
    if writer is not None:
        writer.add_figure(tag, figure, global_step=step, close=False)
        writer.flush()
    plt.close(figure)
    return path


def model_inputs(module: Any, images: Any) -> Any:
    """Raw images -> the network's inputs through the model's own preprocessing, as
    (N, 1, 28, 28) images (our MLP takes images too; input regions need them)."""
    x = module.classifier.preprocess(images.to(module.device))
    return x.view(len(x), 1, IMAGE_SIZE, IMAGE_SIZE) if x.ndim == 2 else x
