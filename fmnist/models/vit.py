"""A small vision transformer, the worked example of adding a model: this file and
conf/model/vit.yaml (``_target_: fmnist.models.vit.ViT``) are all it takes. Nothing here is
written for the analysis: it finds ``embed``, ``encoder.layers.0`` and ``.1`` in the module
tree (and says in one line each that it cannot picture the encoder's (N, 49, dim) tokens);
the OOD score reads the inputs of ``head``, the layer that outputs the logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ViT(nn.Module):
    """Patch embedding (a ``patch`` x ``patch`` strided conv), learned position embeddings,
    ``depth`` pre-norm transformer encoder layers, mean pooling over tokens, a linear head.

    Args:
        patch: side of the square patches (must divide the image size).
        dim: token width; heads: attention heads (must divide ``dim``).
        depth: encoder layers; mlp_ratio: width of each layer's MLP, in multiples of ``dim``.
        dropout: dropout inside the encoder layers.
    """

    def __init__(
        self,
        patch: int = 4,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, (image_size // patch) ** 2, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, mlp_ratio * dim, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.position  # (N, patches, dim)
        return self.head(self.norm(self.encoder(tokens).mean(1)))
