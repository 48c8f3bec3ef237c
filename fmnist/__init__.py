"""fmnist: train, evaluate and explain convolutional networks on Fashion-MNIST.

Reading order: ``data`` -> ``models`` -> ``training`` (the LightningModule and a run) ->
``callbacks`` -> ``analysis`` (with its plots) -> ``inference`` (checkpoints, prediction,
export); ``runs`` holds what wraps a run as a process (entry points, sweeps, resuming).
"""

from fmnist.runs import hardware  # noqa: F401  (registers fmnist.cpu_precision)
from fmnist.training.metrics import register_resolvers

__version__ = "0.1.0"

# Configs name metric modes and the CPU's precision through resolvers
# (conf/callbacks/default.yaml, conf/trainer/cpu_fast.yaml): registered whenever the package
# is imported, before any config is composed.
register_resolvers()
