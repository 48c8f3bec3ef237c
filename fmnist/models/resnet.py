"""Pre-activation ResNets for 28x28 images: ResNet-18 and wide ResNets (WRN-d-k) in one class.

Pre-activation blocks (He et al., 2016: BN -> ReLU -> conv) with a 3x3 stride-1 stem, as
used for CIFAR-sized images; the stages halve the resolution (28 -> 14 -> 7 -> 4). The same
class gives PreAct ResNet-18 (``blocks=[2,2,2,2]``, ``widths=[64,128,256,512]``) and the
wide ResNet WRN-28-10 of the random-erasing paper (``blocks=[4,4,4]``,
``widths=[160,320,640]``, ``stem_width=16``).
"""

from __future__ import annotations

from pydantic import PositiveInt
from torch import Tensor, nn

from fmnist.config import DropProbability, checked
from fmnist.errors import ConfigError
from fmnist.models.cnn import Widths


class PreActBlock(nn.Module):
    """BN -> ReLU -> conv3x3 -> BN -> ReLU -> [dropout] -> conv3x3, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        # The projection shortcut reads the pre-activated input, as in the paper.
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.dropout(self.relu(self.bn2(out))))
        return out + shortcut


class PreActResNet(nn.Module):
    """Stem conv, stages of pre-activation blocks, final BN-ReLU, global average pool, linear.

    Args:
        blocks: blocks per stage, e.g. ``[2, 2, 2, 2]`` (ResNet-18) or ``[4, 4, 4]`` (WRN-28).
        widths: output channels per stage (same length as ``blocks``).
        stem_width: channels of the first conv (defaults to ``widths[0]``).
        dropout: dropout between the two convs of each block (WRN-style).
    """

    @checked("model")
    def __init__(
        self,
        blocks: Widths = (2, 2, 2, 2),
        widths: Widths = (64, 128, 256, 512),
        stem_width: PositiveInt | None = None,
        dropout: DropProbability = 0.0,
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths):
            raise ConfigError(
                f"model.blocks={list(blocks)} and model.widths={list(widths)} should be the "
                "same length (blocks and output channels per stage)."
            )
        channels = stem_width or widths[0]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)]
        for stage, (count, width) in enumerate(zip(blocks, widths, strict=True)):
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(PreActBlock(channels, width, stride, dropout))
                channels = width
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.dense = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dense(self.features(x)))
