"""Ensemble: several copies of one network trained side by side, one model to every tool.

Averaging the probabilities of independently initialized networks is the most reliable gain a
fixed architecture has left once it is trained well. Built as one ``nn.Module`` rather than as
separate runs combined afterwards, so a run, its checkpoint, its analysis, prediction, export
and serving treat the ensemble as they treat any network.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from fmnist.errors import ConfigError
from fmnist.models import build_net


class MeanProbability(nn.Module):
    """Logits of ``members`` networks side by side, (N, members x classes), to the log of their
    mean probability, (N, classes): logits whose softmax is that mean.

    A module of its own so that the ensemble's output comes out of a layer: the OOD score
    reads the layer that outputs the logits, and its inputs (here every member's logits) as
    the features."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.members, self.log_members = members, math.log(members)

    def forward(self, logits: Tensor) -> Tensor:
        members = logits.float().unflatten(1, (self.members, -1))
        return members.log_softmax(-1).logsumexp(1) - self.log_members


class Ensemble(nn.Module):
    """``members`` networks of the class ``member`` names, each with its own initialization.

    In training mode ``forward`` returns every member's logits, (members, N, classes), and
    ``ClassificationModule`` sums the members' losses: each member gets the gradient it would
    get alone (the batches and augmentations are shared). In eval mode it returns the log of
    the members' mean probability.

    The members sit in a ``ModuleDict``: analysis takes the items of a ``ModuleList`` as
    layers, and here each member's own layers are the ones to analyse.

    Args:
        member: ``_target_`` of the members' class, e.g. ``fmnist.models.CNN``.
        members: how many.
        **kwargs: the members' arguments (plain values, as in any model config).
    """

    def __init__(self, member: str = "fmnist.models.CNN", members: int = 2, **kwargs: Any) -> None:
        super().__init__()
        if members < 1:
            raise ConfigError(f"model.members={members} should be at least 1.")
        if member.rpartition(".")[2] == type(self).__name__:
            raise ConfigError(f"model.member={member!r}: an ensemble's members are networks.")
        config = {"_target_": member, **kwargs}
        self.members = nn.ModuleDict({str(i): build_net(config) for i in range(members)})
        self.average = MeanProbability(members)

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for net in self.members.values():  # a loop, not a comprehension: TorchScript compiles it
            outputs.append(net(x))
        if self.training:
            return torch.stack(outputs)
        return self.average(torch.cat(outputs, 1))
