"""Building objects from Hydra configs, with the user's errors kept readable."""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate

from fmnist.errors import FmnistError


def build(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, but a ``FmnistError`` raised by the target's constructor
    comes out as itself: Hydra would wrap it in an ``InstantiationException`` whose message
    buries the fix under the config's details."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, FmnistError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def in_multirun() -> bool:
    """True inside a job of a multirun (``python train.py -m ...``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
