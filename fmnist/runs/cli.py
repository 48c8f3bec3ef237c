"""What the command-line entry points share: user errors as one paragraph, not a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from fmnist.errors import FmnistError

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
