"""A configurable VGG-style CNN: the study's Keras model and our faster, better variants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveInt
from torch import Tensor, nn

from fmnist.config import DropProbability, checked
from fmnist.errors import ConfigError

#: Channel or layer widths: a non-empty list of positive integers, e.g. [32, 64, 128].
Widths = Annotated[Sequence[PositiveInt], Field(min_length=1)]


class ConvBlock(nn.Sequential):
    """``convs`` x (conv -> [batch norm] -> ReLU), then 2x2 max pooling if ``pool``.

    With ``pool_early`` the last conv is pooled *before* its batch norm and ReLU (as in fast
    CIFAR-10 training recipes): ReLU commutes with max pooling, and normalizing the pooled
    map costs a quarter of the memory traffic, which dominates at 28x28 on a CPU. With
    ``pool_first`` the *first* conv is (airbench's block order): the block's later convs run
    at half the resolution, a quarter of their multiply-adds.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        batch_norm: bool,
        convs: int,
        pool: bool,
        pool_early: bool = False,
        pool_first: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        pool_at = 0 if pool_first else convs - 1 if pool_early else None  # before batch norm
        for i in range(convs):
            layers.append(
                nn.Conv2d(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    kernel_size,
                    padding=kernel_size // 2,
                    bias=not batch_norm,  # batch norm's shift makes a conv bias redundant
                )
            )
            if pool and i == pool_at:
                layers.append(nn.MaxPool2d(2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        if pool and pool_at is None:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)
        self.out_channels = out_channels


class CNN(nn.Module):
    """Conv blocks (one per entry of ``filters``), a dense layer and a linear classifier.

    A block pools only while its map is at least 2x2, so any number of blocks fits 28x28:
    ``features`` (the blocks), ``dense`` (dropout -> linear -> ReLU), ``classifier``.

    Args:
        kernel_size: odd ("same" padding).
        dropout: drop probability before the dense layer and before the classifier.
        hidden: width of the dense layer (0: none, the classifier reads the features).
        global_pool: average the last map to 1x1 (fewer parameters for wide nets).
        pool_early: pool before batch norm and ReLU (faster; see ``ConvBlock``).
        pool_first: pool after each block's first conv (airbench's order; see ``ConvBlock``).
        dirac_init: each conv's first ``in_channels`` filters start as the identity (as in
            airbench), so a deep stack starts close to passing its input through.
    """

    @checked("model")
    def __init__(
        self,
        filters: Widths = (32, 64, 128),
        kernel_size: PositiveInt = 3,
        batch_norm: bool = True,
        dropout: DropProbability = 0.25,
        hidden: NonNegativeInt = 128,
        convs_per_block: PositiveInt = 1,
        global_pool: bool = False,
        pool_early: bool = False,
        pool_first: bool = False,
        dirac_init: bool = False,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        filters = list(filters)
        if kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size={kernel_size} should be odd ('same' padding).")
        blocks, channels, size = [], in_channels, image_size
        for width in filters:
            pool = size >= 2
            pools = (pool, pool_early, pool_first)
            blocks.append(
                ConvBlock(channels, int(width), kernel_size, batch_norm, convs_per_block, *pools)
            )
            channels, size = int(width), size // 2 if pool else size
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1) if global_pool else nn.Identity()
        flat = channels * (1 if global_pool else size * size)
        if hidden:
            self.dense = nn.Sequential(
                nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True)
            )
        else:
            self.dense = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden or flat, num_classes))
        if dirac_init:
            for conv in (m for m in self.features.modules() if isinstance(m, nn.Conv2d)):
                nn.init.dirac_(conv.weight.data[: conv.in_channels])

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dense(self.pool(self.features(x))))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
