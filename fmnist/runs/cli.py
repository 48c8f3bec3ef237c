"""The command-line entry points, and what they share: user errors as one paragraph, not a
traceback.

``fmnist-train``, ``fmnist-analyze``, ``fmnist-predict`` and ``fmnist-export`` (console scripts,
see pyproject.toml) are the functions at the bottom; ``python train.py``, ``python analyze.py``
and ``python -m fmnist.inference.predict|export`` call the same functions. Each imports its
work only when it runs, so a command loads only its own code.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fmnist.errors import FmnistError
from fmnist.runs.config import CONF_DIR

T = TypeVar("T")
log = logging.getLogger("fmnist")


def run_reporting_errors(function: Callable[..., T], *args: Any) -> T | None:
    """Run ``function``; a user error (FmnistError) is printed as its message and exits 1.

    Set ``FMNIST_TRACEBACK=1`` for the full traceback. In a multirun the error is re-raised
    so Hydra records the job as failed and the other jobs go on.
    """
    try:
        return function(*args)
    except FmnistError as error:
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if multirun or os.environ.get("FMNIST_TRACEBACK"):
            raise
        log.error("%s: %s", type(error).__name__, error)
        sys.exit(1)


def _hydra_main(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """``hydra.main`` over ``conf/`` wherever the package is installed (see ``CONF_DIR``).

    Hydra would name the job after this module (``cli``); ``conf/hydra/default.yaml`` names it
    after the config's ``task_name`` instead, as when each command was its own script.
    """
    return hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)


@_hydra_main("train")
def train_main(cfg: DictConfig) -> float | None:
    """Train and test (conf/train.yaml). Returns the monitored metric's best value, which
    Hydra sweepers optimize."""
    from fmnist.training.run import train

    metrics = run_reporting_errors(train, cfg)
    return None if metrics is None else metrics["monitor"]["best"]


@_hydra_main("analyze")
def analyze_main(cfg: DictConfig) -> None:
    """Study the data or a trained model (conf/analyze.yaml, ``task=eda|pca|tsne|data|model``)."""
    from fmnist.analysis.tasks import run_analysis

    run_reporting_errors(run_analysis, cfg)


@_hydra_main("predict")
def predict_main(cfg: DictConfig) -> None:
    """Classify image files with a checkpoint (conf/predict.yaml)."""
    from fmnist.inference.predict import predict

    run_reporting_errors(predict, cfg)


@_hydra_main("export")
def export_main(cfg: DictConfig) -> None:
    """Export a checkpoint to ONNX or TorchScript (conf/export.yaml)."""
    from fmnist.inference.export import export

    run_reporting_errors(export, cfg)
