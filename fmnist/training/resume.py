"""Fitting that survives faults: checked resumption, and NaN/inf losses as user errors.

A killed run resumes from ``checkpoints/last.ckpt`` (rewritten after every epoch) when the same
command is given its directory again (``hydra.run.dir=<it>``; ``ckpt_path=last`` says so
explicitly), and a re-run sweep resumes each unfinished job whose config is unchanged. The
config is first compared with the run's ``config.yaml`` (:data:`RESUME_FIXED`). With torch's
RNG state in each checkpoint and epoch k's order drawn from (seed, k), a resumed run ends at
exactly the metrics of an uninterrupted one on CPU. ``ckpt_path=<file>`` of another directory
is a fine-tune: its weights, with a fresh optimizer, schedule and epoch count. Checkpoints are
written atomically (:class:`AtomicCheckpointIO`); an unreadable ``last.ckpt`` falls back to the
newest readable one. The guarantees: docs/reliability.md.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from fmnist.checkpoint import read_checkpoint, weights_mismatch
from fmnist.config import in_multirun
from fmnist.errors import CheckpointError, ConfigError, TrainingDivergedError
from fmnist.files import CONFIG_FILE, METRICS_FILE, write_torch
from fmnist.training.load import check_checkpoint
from fmnist.training.rundir import last_checkpoint, same_config

log = logging.getLogger(__name__)

#: Config entries a resumed run must share with the run it continues: what its checkpoint's
#: state (weights, optimizer and schedule, epoch count, random streams, best scores) was
#: made with. Anything else (progress bar, logger, explanation callbacks...) may change.
RESUME_FIXED = (
    "seed", "monitor", "model", "module.label_smoothing", "module.tta_flip", "optimizer",
    "scheduler", "data.val_size", "data.split_seed", "data.normalize", "data.flatten",
    "data.one_hot", "data.batch_size", "data.crop_padding", "data.hflip", "data.erasing",
    "trainer.max_epochs", "trainer.max_steps", "trainer.accumulate_grad_batches",
    "trainer.limit_train_batches", "trainer.devices", "trainer.num_nodes",
)  # fmt: skip


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written atomically on any local filesystem: to a temporary file next to the
    final name, fsynced, then renamed over it. Lightning stages them in ``/tmp`` and moves
    them, which across filesystems is a copy that first truncates the old file: a kill
    during it left a 0-byte ``last.ckpt``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options (local files only).")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_torch(path, checkpoint)


class Start(NamedTuple):
    """Where ``fit`` starts: ``path`` resumed (``resume``: the whole training state) or only
    its weights taken (a fine-tune); no path: afresh."""

    path: str | None = None
    resume: bool = False


def resolve_start(cfg: DictConfig, output_dir: str | Path) -> Start:
    """Check the checkpoint to start from before anything is built. ``ckpt_path=last``, or
    none in the directory of an interrupted run, resumes this run directory's
    ``checkpoints/last.ckpt`` (Lightning would silently start afresh); a checkpoint of this
    directory resumes it too; one of another directory gives a fine-tune its weights."""
    ckpt_path, output_dir = cfg.get("ckpt_path"), Path(output_dir)
    if ckpt_path == "last" or (not ckpt_path and interrupted_run(cfg, output_dir)):
        ckpt_path = newest_readable_checkpoint(last_checkpoint(output_dir))
    elif not ckpt_path:
        return Start()
    else:
        check_checkpoint(ckpt_path)  # missing, corrupt or not ours: an error now
    own = Path(ckpt_path).resolve().parent == last_checkpoint(output_dir).parent.resolve()
    start = Start(str(ckpt_path), resume=own)
    if start.resume:
        check_resume_config(cfg, output_dir)
        log.info("Resuming the run in %s from %s", output_dir, start.path)
    else:
        log.info(
            "Fine-tuning from the weights of %s: a fresh optimizer, schedule and epoch count "
            "(to continue that run instead, give its directory: hydra.run.dir=<its directory>)",
            start.path,
        )
    return start


def interrupted_run(cfg: DictConfig, output_dir: Path) -> bool:
    """True when ``output_dir`` holds checkpoints but no ``metrics.json`` and this start
    continues that run: always a single run, a multirun job only with its config unchanged."""
    checkpoints = last_checkpoint(output_dir).parent
    if (output_dir / METRICS_FILE).exists() or not any(checkpoints.glob("*.ckpt")):
        return False
    return not in_multirun() or same_config(cfg, output_dir)


def newest_readable_checkpoint(last: Path) -> Path:
    """``last`` itself, or when it is missing or unreadable (a kill while an older version
    wrote it, a damaged disk) the newest readable checkpoint next to it, saying so."""
    others = sorted(
        (p for p in last.parent.glob("*.ckpt") if p.name != last.name),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    candidates = [last, *others] if last.is_file() else others
    if not candidates:
        raise CheckpointError(
            f"ckpt_path=last, but {last} does not exist. Resuming needs the run's own "
            "directory: python train.py hydra.run.dir=<the run's directory> ckpt_path=last "
            "(with the run's other overrides), or pass ckpt_path=/path/to/file.ckpt."
        )
    for path in candidates:
        try:
            checkpoint = check_checkpoint(path)
        except CheckpointError as exc:
            log.warning("ckpt_path=last: %s", exc)
            continue
        if path != last:
            log.warning(
                "Resuming from %s instead (epoch %s): the newest readable checkpoint of the run.",
                path,
                checkpoint.get("epoch"),
            )
        return path
    raise CheckpointError(
        f"ckpt_path=last: None of the {len(candidates)} checkpoints in {last.parent} can be "
        "read (see the warnings above). Start the run again in a new directory (leave out "
        "hydra.run.dir)."
    )


def _flat(value: Any, key: str) -> dict[str, Any]:
    """``value`` (a config node or a plain value) under ``key`` as dotted keys of plain,
    resolved values, nested mappings unfolded."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, dict):
        return {key: value}
    return {k: v for name, item in value.items() for k, v in _flat(item, f"{key}.{name}").items()}


def _shown(value: Any) -> str:
    return "(unset)" if value is None else str(value)


def resume_conflicts(stored: DictConfig, current: DictConfig) -> list[str]:
    """``key: stored -> current`` for each :data:`RESUME_FIXED` value that differs."""
    conflicts = []
    for entry in RESUME_FIXED:
        old, new = (_flat(OmegaConf.select(c, entry), entry) for c in (stored, current))
        conflicts += [
            f"{key}: {_shown(old.get(key))} -> {_shown(new.get(key))}"
            for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)
        ]
    return conflicts


def check_resume_config(cfg: DictConfig, output_dir: str | Path) -> None:
    """Before a resume of the run in ``output_dir``, refuse the changes it cannot honour:
    today they train for a while and then crash (a longer one-cycle schedule, another
    optimizer's missing state) or silently mix two runs."""
    stored_path = Path(output_dir) / CONFIG_FILE
    if not stored_path.is_file():
        log.warning("%s is missing: the config of the resumed run is not checked", stored_path)
        return
    conflicts = resume_conflicts(OmegaConf.load(stored_path), cfg)
    if conflicts:
        raise ConfigError(
            f"Cannot resume the run in {output_dir}: {'; '.join(conflicts)}. A resume "
            "continues the same run: give the run's own values (see its config.yaml), or "
            "start a new run in a new directory."
        )


def starting_weights(module: L.LightningModule, start: Start) -> dict[str, Any] | None:
    """The checkpoint's weights, which must fit the model of this run's config layer by layer."""
    if not start.path:
        return None
    weights = read_checkpoint(start.path)["state_dict"]
    problem = weights_mismatch(module.state_dict(), weights)
    if problem:
        raise CheckpointError(
            f"Cannot start from {start.path}: {problem}. Use the model overrides of the run "
            "that wrote the checkpoint."
        )
    return weights


def fit(
    trainer: L.Trainer,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    start: Start,
    output_dir: str | Path,
) -> None:
    """``trainer.fit`` from ``start``, with the failures a user can act on turned into
    ``FmnistError``s."""
    weights = starting_weights(module, start)
    if weights is not None and not start.resume:
        module.load_state_dict(weights)  # a fine-tune: the weights only
    ckpt_path = start.path if start.resume else None
    last = last_checkpoint(output_dir)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException as exc:
        # Lightning stops on SIGTERM with a SystemExit of code 0, which would tell a
        # scheduler the run succeeded: exit as a SIGTERM-killed process does, saying how
        # to resume (from the last finished epoch; the unfinished one is redone exactly).
        log.error(
            "Stopped by SIGTERM before the end of training. %s",
            f"Resume with: python train.py hydra.run.dir={output_dir} ckpt_path=last "
            "(and the run's other overrides)."
            if last.is_file()
            else "No epoch had finished, so there is no checkpoint: start the run again.",
        )
        raise SystemExit(128 + signal.SIGTERM) from exc
    except FloatingPointError as exc:
        kept = (
            f"Last good checkpoint: {last}; after the fix, resume from it with "
            f"hydra.run.dir={output_dir} ckpt_path=last, or start afresh."
            if last.is_file()
            else "No epoch had finished, so there is no checkpoint to keep."
        )
        raise TrainingDivergedError(f"Training diverged. {exc} {kept}") from exc
