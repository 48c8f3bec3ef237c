"""Lightning DDP under Hydra: one run directory per run, and every image evaluated once.

Lightning does the distributed work and torchmetrics syncs metric states; two gaps are
closed here:

- Evaluation: Lightning's ``DistributedSampler`` pads val/test to a multiple of the process
  count by repeating images, which a synced metric counts twice;
  :func:`fmnist.data.batches.eval_sampler` shards without padding.
- Multirun: Lightning starts DDP children by re-running the command line with
  ``hydra.run.dir=<run dir>``; in a multirun that line is the whole sweep, so every child
  would start the sweep again elsewhere. :func:`ddp_children_run_this_job` fixes both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, read_write

from fmnist.config import in_multirun

#: Environment variables Lightning's subprocess launcher sets in the launching process.
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
#: Hydra command-line flags that take a value as the next argument.
_FLAGS_WITH_VALUE = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir"}
#: Where the launchers Lightning supports give a process its rank (torchrun, Lightning's own
#: subprocesses, SLURM, LSF); unset in a process started by hand.
_RANK_ENV = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_launching_process() -> bool:
    """True in the process started for the run (global rank 0), false in the DDP processes
    of other ranks, which share its run directory and must not claim it again."""
    return all(os.environ.get(name, "0") == "0" for name in _RANK_ENV)


def job_command_line(argv: list[str], job_overrides: list[str]) -> list[str]:
    """``argv`` of a multirun turned into the command of one of its jobs: Hydra's flags kept,
    ``-m`` and the sweep's overrides replaced by the job's own, in run mode."""
    kept: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-m", "--multirun"):
            continue
        if arg in _FLAGS_WITH_VALUE:
            kept += [arg, next(args, "")]
        elif arg.startswith("-"):
            kept.append(arg)
        # else: a (sweep) override, replaced by the job's overrides below
    # hydra.mode=RUN: configs such as hparams_search=optuna set hydra.mode=MULTIRUN themselves.
    return [argv[0], *kept, *job_overrides, "hydra.mode=RUN"]


@contextmanager
def ddp_children_run_this_job() -> Iterator[None]:
    """In a multirun job, make Lightning's DDP child processes run this job in its directory.

    Does nothing outside a multirun; the children themselves run in run mode.
    """
    if not in_multirun():
        yield
        return
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Left by the previous job of this sweep, whose children have exited. Lightning
        # would reuse the process group ("Connection closed by peer"), and with LOCAL_RANK
        # set it would take the processes for launched by someone else and wait forever.
        torch.distributed.destroy_process_group()
        for name in _LAUNCH_ENV:
            os.environ.pop(name, None)
    hydra_cfg = HydraConfig.get()
    saved_argv, saved_run_dir = sys.argv, OmegaConf.to_container(hydra_cfg.run)["dir"]
    overrides = [str(o) for o in hydra_cfg.overrides.task]
    try:
        sys.argv = job_command_line(sys.argv, overrides)
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
        yield
    finally:
        sys.argv = saved_argv
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = saved_run_dir
