"""Classifiers for 28x28 grayscale images. Each is a plain ``nn.Module``; configs in conf/model/."""

from fmnist.models.cnn import CNN
from fmnist.models.mlp import MLP
from fmnist.models.resnet import PreActResNet

__all__ = ["CNN", "MLP", "PreActResNet"]
