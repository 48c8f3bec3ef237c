"""fmnist: train, evaluate and explain convolutional networks on Fashion-MNIST."""

__version__ = "0.1.0"
