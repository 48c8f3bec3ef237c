"""One training run from a composed config: build, fit, test the best checkpoint, report.

``train.py`` is a thin Hydra entry point over :func:`train`; tests call :func:`train`
directly with configs made by Hydra's compose API.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import (
    Callback,
    Checkpoint,
    LearningRateMonitor,
    ProgressBar,
)
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from fmnist.config import build, refused
from fmnist.errors import ConfigError
from fmnist.files import (
    CONFIG_FILE,
    METRICS_FILE,
    OVERRIDES_FILE,
    atomic_write_text,
    ensure_writable_dir,
    write_json,
)
from fmnist.metrics import HPARAM_METRICS, VAL_ACC_BEST, mode_of, print_test_report
from fmnist.models.cnn import count_parameters
from fmnist.training.distributed import ddp_children_run_this_job, is_launching_process
from fmnist.training.module import ClassificationModule, build_scheduler
from fmnist.training.predictions import PREDICTIONS_FILE, run_results, save_predictions
from fmnist.training.resume import AtomicCheckpointIO, Start, fit, resolve_start
from fmnist.training.rundir import (
    check_not_finished,
    finished_job_metrics,
    remove_leftovers,
    run_dir_lock,
)

log = logging.getLogger(__name__)


def instantiate_each(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a config group such as callbacks."""
    if not group:
        return []
    return [build(node) for node in group.values() if node and "_target_" in node]


def drop_callbacks_the_run_cannot_use(
    callbacks: list[Callback], progress_bar: bool, has_logger: bool
) -> list[Callback]:
    """Leave out the progress bar under ``trainer.enable_progress_bar=false`` and the learning
    rate monitor under ``logger=none``: Lightning refuses both combinations, and either
    override alone should simply turn that output off."""
    kept = []
    for callback in callbacks:
        if isinstance(callback, ProgressBar) and not progress_bar:
            continue
        if isinstance(callback, LearningRateMonitor) and not has_logger:
            log.info("No logger: the learning rate monitor is left out")
            continue
        kept.append(callback)
    return kept


def log_run_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The resolved run config (its hyperparameters: not Hydra's node, paths, callbacks or
    loggers), once, to every logger; TensorBoard's hparams entry also names the metrics its
    tab compares runs on (initially 0, logged as training goes)."""
    params = OmegaConf.to_container(cfg, resolve=True)
    params = {k: v for k, v in params.items() if k not in ("hydra", "paths", "callbacks", "logger")}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, dict.fromkeys(HPARAM_METRICS, 0))
        else:
            logger.log_hyperparams(params)


def check_config(cfg: DictConfig) -> None:
    """Checks of values no constructor checks, before anything is built or written (the
    data module, module and network check their own arguments; Lightning's refusal of a
    trainer setting becomes a ConfigError when the Trainer is built: fmnist.config.build).
    The optimizer and scheduler are tried by torch on one dummy parameter: torch accepts
    lr=nan, and refuses other values (or OneCycleLR's pct_start=2) only once ``fit``
    configures the optimizers."""
    mode_of(cfg.get("monitor"))  # a ConfigError listing the choices when unknown
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"seed={seed!r} must be a non-negative integer or null.")
    optimizer, scheduler = cfg.optimizer, cfg.get("scheduler")
    lr = optimizer.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise ConfigError(f"optimizer.lr={lr!r} must be a positive finite number (e.g. 0.001).")
    group = optimizer
    try:
        dummy = build(optimizer)(params=[torch.zeros(1, requires_grad=True)])
        if scheduler:
            group = scheduler
            build_scheduler(scheduler, dummy, steps=100)
    except (ValueError, TypeError) as exc:
        raise refused(group, exc) from exc


def build_data_and_module(cfg: DictConfig) -> tuple[L.LightningDataModule, ClassificationModule]:
    """The data module and LightningModule of a run config (the benchmark reuses this)."""
    log.info("Data: %s", cfg.data._target_)
    datamodule: L.LightningDataModule = build(cfg.data)
    log.info("Model: %s", cfg.model._target_)
    # Not recursive: the module builds net/optimizer/scheduler itself from their configs,
    # so its checkpoint stores plain configs (see fmnist.training.module).
    module: ClassificationModule = build(
        cfg.module,
        net=cfg.model,
        optimizer=cfg.optimizer,
        scheduler=cfg.get("scheduler"),
        _recursive_=False,
    )
    return datamodule, module


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and test one model; returns the metrics written to ``metrics.json``."""
    check_config(cfg)
    if (stored := finished_job_metrics(cfg)) is not None:  # re-run of an unfinished sweep
        return stored
    output_dir = Path(cfg.paths.output_dir)
    ensure_writable_dir(output_dir, "run directory")
    launching = is_launching_process()  # DDP processes of other ranks share its directory
    with run_dir_lock(output_dir) if launching else contextlib.nullcontext():
        origin = prepare_run_dir(cfg, output_dir, launching)
        return fit_and_test(cfg, output_dir, origin)


def prepare_run_dir(cfg: DictConfig, output_dir: Path, launching: bool) -> Start:
    """Check what the run directory holds against what this run will do (a finished run, the
    checkpoint and config to resume), tidy what a killed start left and record the resolved
    config; returns the checkpoint to start from."""
    if launching:
        check_not_finished(output_dir, cfg.get("ckpt_path"))
    origin = resolve_start(cfg, output_dir)
    if launching:
        remove_leftovers(output_dir, origin.path if origin.resume else None)
        # Hydra saves the unresolved config in .hydra/; this one has every value filled in.
        atomic_write_text(output_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
        # The run's own record of the overrides that started it, which its readers trust
        # over Hydra's .hydra/ copy; a resume keeps the starting command's.
        record = output_dir / OVERRIDES_FILE
        if HydraConfig.initialized() and (not origin.resume or not record.exists()):
            atomic_write_text(record, OmegaConf.to_yaml(HydraConfig.get().overrides.task))
    return origin


def fit_and_test(cfg: DictConfig, output_dir: Path, origin: Start) -> dict[str, Any]:
    """Build, fit, test the best checkpoint, print and write the metrics."""
    if cfg.seed is not None:  # 0 is a seed too
        L.seed_everything(cfg.seed, workers=True)

    datamodule, module = build_data_and_module(cfg)
    callbacks: list[Callback] = instantiate_each(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_each(cfg.get("logger"))
    callbacks = drop_callbacks_the_run_cannot_use(
        callbacks, cfg.trainer.get("enable_progress_bar", True), bool(loggers)
    )
    log.info("Trainer: %s", cfg.trainer._target_)
    # No checkpoint callback (callbacks=none): Lightning would add its own (epoch=0-step=5.ckpt).
    saves = any(isinstance(c, Checkpoint) for c in callbacks)
    trainer: L.Trainer = build(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=saves,
    )

    log_run_config(loggers, cfg)

    log.info("Training")
    start = time.perf_counter()
    with ddp_children_run_this_job():  # DDP in a multirun: see fmnist.training.distributed
        fit(trainer, module, datamodule, origin, output_dir)
    train_time = time.perf_counter() - start

    metrics = fit_summary(trainer, module, cfg, train_time)
    predictions = None
    if cfg.get("test", True):
        best = metrics["best_checkpoint"] or None  # None: the final weights
        log.info("Testing %s", best or "the final weights (no checkpoint was saved)")
        (logged,) = trainer.test(
            module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
        )
        tested, predictions = run_results(logged, module.test_outputs)
        metrics.update(tested)
        if trainer.is_global_zero:
            print_test_report(metrics, title=f"Test metrics ({output_dir})")
    if trainer.is_global_zero:  # printed first: a full disk must not cost the test metrics
        log.info("Wrote %s", write_json(output_dir / METRICS_FILE, metrics))
        if predictions is not None:
            log.info("Wrote %s", save_predictions(output_dir / PREDICTIONS_FILE, predictions))
    for logger in loggers:
        if isinstance(logger, WandbLogger):  # wandb would hand its run to the next job's logger
            logger.experiment.finish()
    return metrics


def fit_summary(
    trainer: L.Trainer, module: ClassificationModule, cfg: DictConfig, train_time: float
) -> dict[str, Any]:
    """What fitting found: the monitored metric's best value (None without validation or
    checkpointing), the best validation accuracy, time, size and the best checkpoint (kept
    by the checkpoint callback that monitors ``cfg.monitor``, if there is one)."""
    checkpoint = next((c for c in trainer.checkpoint_callbacks if c.monitor == cfg.monitor), None)
    score = checkpoint.best_model_score if checkpoint is not None else None
    best_val_acc = float(module.val_acc_best.max_value)  # restored on resume, unlike logs
    best_val_acc = best_val_acc if math.isfinite(best_val_acc) else None
    if score is None and cfg.monitor in ("val/acc", VAL_ACC_BEST):
        score = best_val_acc
    return {
        "monitor": {
            "name": cfg.monitor,
            "mode": mode_of(cfg.monitor),
            "best": None if score is None else float(score),
        },
        VAL_ACC_BEST: best_val_acc,
        "train_time_s": round(train_time, 2),
        "epochs": trainer.current_epoch,
        "parameters": count_parameters(module.net),
        "best_checkpoint": checkpoint.best_model_path if checkpoint else "",
        "seed": cfg.seed,
    }
