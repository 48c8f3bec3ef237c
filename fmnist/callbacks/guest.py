"""An analysis callback is a guest of the run: it may fail, but it must not take the run down.

Lightning lets an exception from any callback hook end ``trainer.fit`` or ``trainer.test``
(``on_exception`` tells the callbacks, then Lightning re-raises): a feature-map grid that
cannot be drawn for a new network would cost the test, ``metrics.json`` and
``predictions.npz`` of a finished training. A :class:`Guest`'s hooks therefore catch their
own failures: one log line names the callback, the reason and the fix, the model's
train/eval modes are put back, the callback sits out the rest of the run, and Lightning
goes on with the next callback, the test and the run's files. The traceback is logged at
DEBUG level.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import lightning as L

from fmnist.errors import FmnistError

log = logging.getLogger(__name__)


def _reason(exc: Exception) -> str:
    """The first line of the error; our own errors say the fix themselves, others their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, FmnistError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def _guarded(hook: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(hook)
    def guarded(self: Guest, trainer: L.Trainer, module: L.LightningModule, *args: Any,
                **kwargs: Any) -> Any:  # fmt: skip
        if self.failed:
            return None
        modes = {m: m.training for m in module.modules()}
        try:
            return hook(self, trainer, module, *args, **kwargs)
        except Exception as exc:  # a guest's failure of any kind: see the module docstring
            self.failed = True
            for m, training in modes.items():
                m.training = training
            log.error("%s failed: %s; %s", type(self).__name__, _reason(exc), self.fix)
            log.debug("%s failed in %s", type(self).__name__, hook.__name__, exc_info=True)
            return None

    return guarded


class Guest(L.Callback):
    """Base class of the analysis callbacks: every ``on_*`` hook a subclass defines runs
    guarded (see the module docstring). ``fix`` is the second half of the log line."""

    #: What the user can do about a failure; subclasses name their config switch.
    fix = "the run goes on without it"
    failed = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, hook in list(vars(cls).items()):
            if name.startswith("on_") and callable(hook):
                setattr(cls, name, _guarded(hook))
