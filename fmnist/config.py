"""Where the Hydra configs are, the resolvers they use, and building objects from them with
the user's errors kept readable.

The resolvers are registered when this module is imported (``fmnist/__init__.py`` imports
it), before any config is composed: ``${fmnist.metric_mode:NAME}`` and
``${fmnist.metric_direction:NAME}`` (``conf/callbacks/default.yaml``,
``conf/hparams_search/optuna.yaml``) and ``${fmnist.cpu_precision:}``
(``conf/trainer/cpu_fast.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fmnist import hardware, metrics
from fmnist.errors import FmnistError


def _conf_dir() -> Path:
    """The configs that belong to this copy of the code: a wheel carries them inside the
    package (``fmnist/conf``, from setup.py); a source checkout (editable install, or the
    repository on PYTHONPATH) has them beside it in the top-level ``conf/``. Found by path,
    not imported as ``fmnist.conf``, so that a checkout never reads another one's configs
    through an editable install's import hook."""
    package = Path(__file__).resolve().parent  # fmnist/ (this module sits at its top)
    candidates = (package / "conf", package.parent / "conf")
    return next((c for c in candidates if (c / "train.yaml").is_file()), candidates[0])


#: The Hydra config directory of the entry points, the tests and the benchmark.
CONF_DIR = _conf_dir()


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


#: Every resolver of the configs: name -> function.
RESOLVERS = {
    "fmnist.metric_mode": metrics.mode_of,
    "fmnist.metric_direction": metrics.direction_of,
    hardware.RESOLVER: hardware.cpu_precision,
}


def register_resolvers() -> None:
    """Register :data:`RESOLVERS` with OmegaConf (again after a test cleared one)."""
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register_resolvers()
