"""Where the Hydra configs are, the resolvers they use, and building objects from them with
the user's errors kept readable: constructors declare each option's type and range once, in
their signature, and :func:`checked` turns a wrong value into a one-line ConfigError.

The resolvers are registered when this module is imported (``fmnist/__init__.py`` imports
it), before any config is composed: ``${fmnist.metric_mode:NAME}`` and
``${fmnist.metric_direction:NAME}`` (``conf/callbacks/default.yaml``,
``conf/hparams_search/optuna.yaml``) and ``${fmnist.cpu_precision:ACCELERATOR}``
(``conf/trainer/default.yaml``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import ConfigDict, Field, ValidationError, validate_call

from fmnist import hardware, metrics
from fmnist.errors import ConfigError, FmnistError, MissingPackageError

F = TypeVar("F", bound=Callable[..., Any])
#: Exact types (a bool is no number, "5" no integer); classes such as nn.Module by isinstance.
STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)
#: Options that are probabilities; a drop (or smoothing) probability of 1 leaves nothing.
Probability = Annotated[float, Field(ge=0, le=1)]
DropProbability = Annotated[float, Field(ge=0, lt=1)]


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


def checked(group: str) -> Callable[[F], F]:
    """Check a constructor's arguments against its annotations before it runs (pydantic,
    :data:`STRICT`; ranges as ``Annotated[int, Field(ge=1)]``). A wrong value is a
    ConfigError naming ``group.argument``, the value and what it must be."""

    def decorate(function: F) -> F:
        validated = validate_call(config=STRICT)(function)
        names = list(inspect.signature(function).parameters)

        @functools.wraps(function)
        def check_then_call(*args: Any, **kwargs: Any) -> Any:
            try:
                return validated(*map(as_list, args), **{k: as_list(v) for k, v in kwargs.items()})
            except ValidationError as exc:
                raise invalid(group, names, exc) from exc

        return check_then_call  # type: ignore[return-value]

    return decorate


def as_list(value: Any) -> Any:
    """Hydra passes a config's lists as ListConfigs, which a strict ``Sequence[int]`` refuses."""
    return OmegaConf.to_object(value) if isinstance(value, ListConfig) else value


def invalid(group: str, names: list[str], exc: ValidationError) -> ConfigError:
    """pydantic's errors about the first wrong argument (``names``: the parameters, for one
    given by position) as one line: ``data.batch_size=0 should be greater than 0`` (a
    union's alternatives joined by "or")."""
    errors = exc.errors()
    first = errors[0]["loc"][0]
    name = names[first] if isinstance(first, int) else first
    index = "".join(f"[{i}]" for i in errors[0]["loc"][1:] if isinstance(i, int))
    said = [e["msg"] for e in errors if e["loc"][0] == first]
    prefix = "Input should be "
    if all(m.startswith(prefix) for m in said):
        verdict = " should be " + " or ".join(m.removeprefix(prefix) for m in said)
    else:
        verdict = ": " + "; ".join(said).lower()
    return ConfigError(f"{group}.{name}{index}={errors[0].get('input')!r}{verdict}.")


def refused(config: DictConfig, exc: BaseException) -> ConfigError:
    """A library's refusal of a config group's settings (torch, Lightning), as the one-line
    error naming the group to fix."""
    name = config._get_full_key(None) or "config"
    return ConfigError(
        f"{name} {config.get('_target_')} refuses its settings: {str(exc).rstrip('.')}. Fix "
        f"the {name}.* overrides."
    )


def missing_package(config: DictConfig, exc: ImportError) -> MissingPackageError:
    """A config group whose class needs a package this install lacks (``logger=mlflow``
    without the extra): the package's error and the extra named after the option, if any."""
    name = config._get_full_key(None) or "config"
    option = name.rsplit(".", 1)[-1]
    try:
        extras = metadata.metadata("fmnist").get_all("Provides-Extra") or []
    except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        extras = []
    fix = f"pip install -e '.[{option}]'" if option in extras else "install the package it names"
    return MissingPackageError(
        f"{name} ({config.get('_target_')}) needs a package that is not installed: "
        f"{str(exc).rstrip('.')}; {fix}."
    )


def build(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, but a ``FmnistError`` raised by the target's constructor
    comes out as itself, and a library's refusal of the settings (Lightning's
    ``trainer.max_epochs=-3``) as a ConfigError naming the group (:func:`refused`): Hydra
    would wrap either in an ``InstantiationException`` whose message buries the fix."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, FmnistError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        if isinstance(exc.__cause__, ImportError) and isinstance(config, DictConfig):
            raise missing_package(config, exc.__cause__) from exc
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        refusal = (ValueError, TypeError, MisconfigurationException)
        if isinstance(config, DictConfig) and isinstance(exc.__cause__, refusal):
            raise refused(config, exc.__cause__) from exc
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
