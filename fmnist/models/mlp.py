"""A multilayer perceptron baseline on the 784 flattened pixels."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from fmnist.errors import ConfigError
from fmnist.models.cnn import check_dropout


class MLP(nn.Module):
    """Flatten -> [linear -> (batch norm) -> ReLU -> dropout] per hidden width -> linear.

    Accepts images (N, 1, 28, 28) or flattened vectors (N, 784).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.2,
        batch_norm: bool = True,
        in_features: int = 784,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        if any(int(h) < 1 for h in hidden):
            raise ConfigError(f"model.hidden={hidden} must hold positive layer widths.")
        check_dropout(dropout)
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
