"""fmnist: train, evaluate and explain convolutional networks on Fashion-MNIST.

Reading order: ``data`` -> ``models`` -> ``training`` (the LightningModule and a run) ->
``callbacks`` -> ``analysis`` (with its plots) -> ``inference`` (checkpoints, prediction,
export); ``runs`` holds what wraps a run as a process (entry points, sweeps, resuming).
"""

from fmnist.training.metrics import register_resolvers

__version__ = "0.1.0"

# Configs name metric modes through resolvers (conf/callbacks/default.yaml): register them
# whenever the package is imported, before any config is composed.
register_resolvers()
