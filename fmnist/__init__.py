"""fmnist: train, evaluate and explain convolutional networks on Fashion-MNIST.

Reading order, bottom up (each layer imports only those below it; ``lint-imports`` checks it,
see pyproject.toml): the base modules (``errors``, ``config``, ``files``, ``metrics``,
``checkpoint``, ``tables``, ``hardware``) -> ``data`` -> ``models`` -> ``training`` (the
LightningModule, a run, resuming) -> ``analysis`` (computations) -> ``plots`` -> ``callbacks``
-> ``results`` (run directories read back, sweeps, leaderboard) and ``inference``
(prediction, export, serving) -> ``tasks`` (``analyze.py``) -> ``cli`` (every command).
"""

from fmnist import config  # noqa: F401  (registers the configs' resolvers)

__version__ = "0.1.0"
