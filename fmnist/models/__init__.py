"""Classifiers for 28x28 grayscale images: plain ``nn.Module``s, configs in conf/model/.

Every ``nn.Module`` class defined in a module of this package is a model, named
``fmnist.models.<module>.<Class>`` (or ``fmnist.models.<Class>`` where that name is unique:
checkpoints store ``fmnist.models.CNN``). Networks are built from configs only through
:func:`build_net`: these classes with plain-value arguments. A config read back from a
checkpoint is data from a file, and Hydra's ``instantiate`` would call any importable
function a nested ``_target_`` names; here nothing but these constructors can run.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import Counter
from collections.abc import Mapping
from typing import Any

from torch import nn

from fmnist.errors import ConfigError
from fmnist.models.cnn import CNN
from fmnist.models.mlp import MLP
from fmnist.models.resnet import PreActResNet

PLAIN = (bool, int, float, str, type(None))


def model_classes() -> dict[str, type[nn.Module]]:
    """``_target_`` -> class: the only networks a config (or a checkpoint) can build. Read
    from the package's files on every call, so a new file is a new model."""
    found: dict[str, type[nn.Module]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, nn.Module)
                and cls.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = cls
    names = Counter(target.rpartition(".")[2] for target in found)
    short = {
        f"{__name__}.{t.rpartition('.')[2]}": c for t, c in found.items() if names[c.__name__] == 1
    }
    return {**found, **short}


def is_plain(value: Any) -> bool:
    """A number, string, boolean or None, or a list of them: data that runs nothing."""
    if isinstance(value, list | tuple):
        return all(isinstance(item, PLAIN) for item in value)
    return isinstance(value, PLAIN)


def config_problem(config: Any, allowed: Mapping[str, Any], where: str) -> str | None:
    """Why ``config`` may not be built (``None`` if it may): a mapping whose ``_target_`` is
    in ``allowed``, with only plain-value arguments the target accepts and no other
    ``_``-keys (``_args_``, ``_partial_``, nested ``_target_``s)."""
    if not isinstance(config, Mapping):
        return f"{where} is a {type(config).__name__}, not a config mapping"
    target = config.get("_target_")
    if target not in allowed:
        return f"{where}._target_={target!r} is not one of {sorted(set(allowed))}"
    accepted = inspect.signature(allowed[target]).parameters
    for key, value in config.items():
        if key == "_target_" or (key == "_partial_" and value is True):
            continue
        if not isinstance(key, str) or key.startswith("_"):
            return f"{where}.{key} is not allowed (no Hydra directives)"
        if key not in accepted and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
            return f"{where}.{key} is not an argument of {target}"
        if not is_plain(value):
            return f"{where}.{key} holds a {type(value).__name__}: only plain values are allowed"
    missing = [
        name
        for name, p in accepted.items()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and name not in config
    ]
    if missing and not config.get("_partial_"):
        return f"{where} lacks {missing}, which {target} requires"
    return None


def build_net(config: Mapping[str, Any]) -> nn.Module:
    """The network of a ``model`` config, through the allowlist."""
    allowed = model_classes()
    problem = config_problem(config, allowed, "model")
    if problem:
        raise ConfigError(f"Cannot build the model: {problem}.")
    kwargs = {k: v for k, v in config.items() if k != "_target_"}
    return allowed[config["_target_"]](**kwargs)


__all__ = ["CNN", "MLP", "PreActResNet", "build_net", "config_problem", "is_plain", "model_classes"]
