"""A multilayer perceptron baseline on the 784 flattened pixels."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import PositiveInt
from torch import Tensor, nn

from fmnist.config import DropProbability, checked


class MLP(nn.Module):
    """Flatten -> [linear -> (batch norm) -> ReLU -> dropout] per hidden width -> linear.

    Accepts images (N, 1, 28, 28) or flattened vectors (N, 784).
    """

    @checked("model")
    def __init__(
        self,
        hidden: Sequence[PositiveInt] = (512, 256),
        dropout: DropProbability = 0.2,
        batch_norm: bool = True,
        in_features: int = 784,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, int(h)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(h)))
            layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = int(h)
        self.dense = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dense(x))
