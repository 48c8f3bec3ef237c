"""An analysis callback is a guest of the run: it may fail, but never at the test's cost.

Lightning ends ``fit`` or ``test`` on an exception from any callback hook (``on_exception``
only notifies before it re-raises), so a figure that cannot be drawn for a new network
would cost a finished training its test, ``metrics.json`` and ``predictions.npz``. A
:class:`Guest`'s hooks catch their own failure instead: one line names the callback, the
reason and the fix, the model's train/eval modes are put back, the callback sits out the
rest of the run, and Lightning goes on. The traceback is logged at DEBUG level.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

import lightning as L

from fmnist.errors import FmnistError

log = logging.getLogger(__name__)


def _reason(exc: Exception) -> str:
    """The error's first line; ours name their fix, others are named by their type."""
    text = (str(exc).strip() or "no message").splitlines()[0].rstrip(".")
    return text if isinstance(exc, FmnistError) else f"{type(exc).__name__}: {text}"


def _guarded(hook: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(hook)
    def guarded(self: Guest, trainer: Any, module: Any, *args: Any, **kwargs: Any) -> Any:
        if self.failed:
            return None
        modes = {m: m.training for m in module.modules()}
        try:
            return hook(self, trainer, module, *args, **kwargs)
        except Exception as exc:  # any failure of a guest: see the module docstring
            self.failed = True
            for m, training in modes.items():
                m.training = training
            name = type(self).__name__
            key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
            log.error("%s failed: %s; the run goes on without it (callbacks.%s=null turns it "
                      "off)", name, _reason(exc), key)  # fmt: skip
            log.debug("%s.%s failed", name, hook.__name__, exc_info=True)
            return None

    return guarded


class Guest(L.Callback):
    """Base class of the analysis callbacks: every ``on_*`` hook a subclass defines is
    guarded (see the module docstring)."""

    failed = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, hook in list(vars(cls).items()):
            if name.startswith("on_") and callable(hook):
                setattr(cls, name, _guarded(hook))
