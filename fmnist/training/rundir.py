"""A run directory across the starts of one run: one process at a time, a finished run
never overwritten, and what a killed start left behind removed by the next one.

One process: :func:`run_dir_lock` holds ``<run dir>/.lock`` (``fcntl.flock``, released by the
OS when its process dies, so never stale) for the whole run, so a second ``train.py`` stops
with the first one's PID. Only the launching process takes it (DDP workers share its
directory); ``flock`` may not lock across the machines of a network filesystem.

A killed process leaves temporary files (:data:`fmnist.files.TMP_PREFIX`) and checkpoints of
the epochs its resume will redo, which Lightning would save again as ``epoch_001-v1.ckpt``.
Only files named as this project names them are removed, never one the resumed checkpoint
refers to.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fmnist.checkpoint import read_checkpoint
from fmnist.config import in_multirun
from fmnist.errors import FmnistError, OutputDirError, RunDirBusyError, UnreadableRunError
from fmnist.files import (
    CONFIG_FILE,
    METRICS_FILE,
    TMP_PREFIX,
    ensure_writable_dir,
    read_run_file,
)
from fmnist.training.distributed import is_launching_process

log = logging.getLogger(__name__)

#: The lock file of a run directory; it holds the PID of the last process that took it.
LOCK_FILE = ".lock"
#: Checkpoints Lightning writes into the run directory when SLURM signals a requeue.
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"
#: Checkpoint names of conf/callbacks/default.yaml, with Lightning's ``-vN`` version suffix.
CHECKPOINT_NAME = re.compile(r"(?:epoch_(?P<epoch>\d+)|last)(?P<version>-v\d+)?\.ckpt")


#: Run directories whose lock this process already holds (taken by :class:`RunDirGuard`
#: before Hydra wrote anything there), resolved path -> the lock's file descriptor.
_HELD: dict[Path, int] = {}


def take_lock(output_dir: Path) -> int:
    """Lock ``output_dir`` (its ``.lock`` file, written with this PID): the descriptor, which
    holds the lock until it is closed; a RunDirBusyError naming the holder's PID when another
    process has it. A refused process writes nothing."""
    fd = os.open(output_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunDirBusyError(
            f"{output_dir} is in use by another run (PID {holder}): two runs in one "
            "directory would overwrite each other's checkpoints and metrics. Wait for it "
            "to end, or give this run its own directory (hydra.run.dir=...)."
        ) from None
    except OSError as exc:  # ENOLCK: a filesystem without locks
        log.warning("Cannot lock %s (%s): a second run there would not be stopped",
                    output_dir, errno.errorcode.get(exc.errno or 0, exc))  # fmt: skip
    with contextlib.suppress(OSError):  # only for the message above: a full disk may refuse
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def run_dir_lock(output_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock while the block runs (:func:`take_lock`); a lock this
    process already holds is kept, not taken twice (``flock`` would refuse it)."""
    if output_dir.resolve() in _HELD:
        yield
        return
    fd = take_lock(output_dir)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


class RunDirGuard(Callback):
    """Claims a run's directory before Hydra writes anything there (conf/train.yaml).

    Hydra writes ``.hydra/*.yaml`` and opens the log in ``hydra.run.dir`` before the task
    starts, so a refusal in the task comes after the first run's record was rewritten. So this
    runs first (``on_run_start``): a directory busy (RunDirBusyError), unwritable, or holding
    a finished run not being resumed (OutputDirError) stops the command with one line and
    nothing written. Else the lock is taken here and held to the end of the process.
    Multiruns and DDP's other ranks are left to ``train()``.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_launching_process():
            return
        # ${now:...} in the directory's name is cached: Hydra resolves the same name later.
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        try:
            check_not_finished(run_dir, config.get("ckpt_path"))  # before writing anything
            ensure_writable_dir(run_dir, "run directory")  # Hydra's own error is 4 lines
            _HELD[run_dir.resolve()] = take_lock(run_dir)
            check_not_finished(run_dir, config.get("ckpt_path"))  # finished meanwhile?
        except FmnistError as error:
            if os.environ.get("FMNIST_TRACEBACK"):
                raise
            print(f"{type(error).__name__}: {error}", file=sys.stderr)  # logging is not set up
            sys.exit(1)
        except OSError:  # no lock on this filesystem: train() says so in its own words
            return


def check_not_finished(output_dir: Path, ckpt_path: str | None) -> None:
    """A new run in the directory of a finished one would overwrite its checkpoints, config
    and metrics: refuse it. Resuming the run itself (``ckpt_path=last``) is allowed, and so
    are the jobs of a multirun, which a re-run sweep trains again on purpose when their
    config changed (see :func:`finished_job_metrics`)."""
    if ckpt_path == "last" or in_multirun() or not (output_dir / METRICS_FILE).exists():
        return
    raise OutputDirError(
        f"{output_dir} holds a finished run ({METRICS_FILE}); a new run there would overwrite "
        "its checkpoints and results. Give the new run a new directory (leave out "
        "hydra.run.dir for a fresh one), or resume this run with ckpt_path=last."
    )


def referenced_checkpoints(checkpoint: Mapping[str, Any]) -> set[str]:
    """File names of the checkpoints the callbacks' states in ``checkpoint`` refer to."""
    names: set[str] = set()
    for state in (checkpoint.get("callbacks") or {}).values():
        if not isinstance(state, Mapping):
            continue
        paths = [state.get(k) for k in ("best_model_path", "kth_best_model_path")]
        paths += [state.get("last_model_path"), *(state.get("best_k_models") or {})]
        names |= {Path(p).name for p in paths if isinstance(p, str) and p}
    return names


def stale_checkpoints(checkpoint_dir: Path, resume_from: Path) -> list[Path]:
    """Checkpoints of ``checkpoint_dir`` written after ``resume_from`` by the killed start,
    and ``-vN`` duplicates; neither ``resume_from`` nor one it refers to."""
    checkpoint = read_checkpoint(resume_from)
    keep = referenced_checkpoints(checkpoint) | {resume_from.name, "last.ckpt"}
    epoch = checkpoint.get("epoch")
    stale = []
    for path in sorted(checkpoint_dir.glob("*.ckpt")):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match is None or path.name in keep:
            continue
        later = isinstance(epoch, int) and int(match["epoch"] or -1) > epoch
        if match["version"] or later:
            stale.append(path)
    return stale


def remove_leftovers(output_dir: Path, resume_from: str | None) -> list[Path]:
    """Remove the temporary files of interrupted writes in ``output_dir``, and, when resuming
    from one of its own checkpoints, the stale checkpoints (:func:`stale_checkpoints`)."""
    # The run directory and its folders (checkpoints/, activations/): where runs write; and
    # the mid-epoch checkpoint Lightning saves on SLURM's requeue signal, which would not
    # resume exactly (the run resumes from the epoch's end in last.ckpt instead).
    found = [*output_dir.glob(f"{TMP_PREFIX}*"), *output_dir.glob(f"*/{TMP_PREFIX}*"),
             *output_dir.glob(HPC_CHECKPOINTS)]  # fmt: skip
    leftovers = [p for p in found if p.is_file()]
    if resume_from:
        leftovers += stale_checkpoints(last_checkpoint(output_dir).parent, Path(resume_from))
    for path in leftovers:
        path.unlink(missing_ok=True)
        log.info("Removed %s, left by an interrupted start of this run", path)
    return leftovers


def last_checkpoint(output_dir: str | Path) -> Path:
    """The checkpoint of a run directory that ``ckpt_path=last`` resumes from."""
    return Path(output_dir) / "checkpoints" / "last.ckpt"


def same_config(cfg: DictConfig, output_dir: Path) -> bool:
    """True when ``skip_finished`` is on and the run in ``output_dir`` was started with this
    resolved config, so a multirun job may be reused or resumed; else it is trained again."""
    if cfg.get("skip_finished", False):
        try:
            data = read_run_file(output_dir / CONFIG_FILE)
            stored = None if data is None else OmegaConf.create(data.decode())
            if stored is not None and OmegaConf.to_container(
                stored, resolve=False
            ) == OmegaConf.to_container(cfg, resolve=True):
                return True
        except (UnreadableRunError, yaml.YAMLError, ValueError, OmegaConfBaseException) as exc:
            log.warning("%s: %s: training this job again", output_dir, exc)
            return False
    log.info("%s holds a different config: training this job again", output_dir)
    return False


def finished_job_metrics(cfg: DictConfig) -> dict[str, Any] | None:
    """The stored metrics of this multirun job when an earlier run of the sweep finished it
    with this resolved config (:func:`same_config`; re-running a sweep: fmnist.training.resume)."""
    if not cfg.get("skip_finished", False) or not in_multirun():
        return None
    output_dir = Path(cfg.paths.output_dir)
    metrics_path = output_dir / METRICS_FILE
    if not metrics_path.exists():
        return None  # not run, or interrupted: resumed from its checkpoint (resolve_start)
    if not same_config(cfg, output_dir):
        return None
    try:
        metrics = json.loads(read_run_file(metrics_path) or b"")
    except (UnreadableRunError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError
        log.warning("%s: %s: training this job again", metrics_path, exc)
        return None
    log.info("Reusing %s: this job finished in an earlier run of the sweep", metrics_path)
    return metrics
