"""Weight-update techniques of the short-budget record-setters (airbench), for any network:
Muon on conv filters (:class:`ConvMuon`) and lookahead (:class:`Lookahead`). Their measured
effect at our budgets: docs/ablations.md."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from fmnist.errors import ConfigError


def orthogonalize(matrix: Tensor, steps: int = 5) -> Tensor:
    """The nearest semi-orthogonal matrix (U V^T of the SVD), approximately: Keller Jordan's
    quintic Newton-Schulz iteration in bf16. Written here because ``torch.optim.Muon`` takes
    2-D parameters only, and a conv filter bank is 4-D."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = matrix.bfloat16()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


class ConvMuon(torch.optim.Optimizer):
    """Muon (momentum, orthogonalized) on every parameter of 4 or more dimensions (conv
    filters, each output channel's filter a row), AdamW on the rest.

    One optimizer, so a scheduler drives both: a conv filter's step size is the group's
    ``lr`` x ``conv_lr_scale`` (Muon's steps are orthogonal matrices, RMS ~1/sqrt(width),
    and want a larger rate than Adam's). Biases and norm parameters (1-D) get no weight decay.
    The AdamW step is written out (8 lines) because torch's functional ``adamw`` is not public
    API, and wrapping a second optimizer would split the state a checkpoint saves.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.003,
        weight_decay: float = 0.0,
        conv_lr_scale: float = 5.0,
        momentum: float = 0.95,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if lr <= 0 or conv_lr_scale <= 0 or not 0 <= momentum < 1:
            raise ConfigError(
                f"optimizer: lr={lr} and conv_lr_scale={conv_lr_scale} should be > 0 and "
                f"momentum={momentum} in [0, 1)."
            )
        params = [p for p in params if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 4], "muon": True},
            {"params": [p for p in params if 1 < p.ndim < 4], "muon": False},
            {"params": [p for p in params if p.ndim <= 1], "muon": False, "weight_decay": 0.0},
        ]
        defaults = dict(lr=lr, weight_decay=weight_decay, conv_lr_scale=conv_lr_scale,
                        momentum=momentum, betas=tuple(betas), eps=eps)  # fmt: skip
        super().__init__([g for g in groups if g["params"]], defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update = self._muon if group["muon"] else self._adamw
            for p in group["params"]:
                if p.grad is not None:
                    update(p, group, self.state[p])
        return loss

    @staticmethod
    def _muon(p: Tensor, group: dict, state: dict) -> None:
        momentum = state.setdefault("momentum", torch.zeros_like(p))
        momentum.lerp_(p.grad, 1 - group["momentum"])
        nesterov = p.grad.lerp(momentum, group["momentum"]).flatten(1)
        rows, cols = nesterov.shape
        lr = group["lr"] * group["conv_lr_scale"]
        p.mul_(1 - lr * group["weight_decay"])
        p.add_(orthogonalize(nesterov).view_as(p), alpha=-lr * max(1, rows / cols) ** 0.5)

    @staticmethod
    def _adamw(p: Tensor, group: dict, state: dict) -> None:
        if not state:
            state.update(step=0, mean=torch.zeros_like(p), square=torch.zeros_like(p))
        state["step"] += 1
        beta1, beta2 = group["betas"]
        state["mean"].lerp_(p.grad, 1 - beta1)
        state["square"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        denominator = (state["square"] / (1 - beta2 ** state["step"])).sqrt_().add_(group["eps"])
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.addcdiv_(state["mean"], denominator, value=-group["lr"] / (1 - beta1 ** state["step"]))


class Lookahead(L.Callback):
    """Lookahead as airbench does it: every ``every`` steps the weights (and batch-norm
    statistics) are pulled toward a slow copy and restarted from it, the pull easing off
    as training goes (the slow copy's decay ramps up as progress cubed to ``decay``); after
    the last step the network is the slow copy. Batch norm gets a fast ``bn_momentum``, since
    its running statistics must keep up with weights that jump back (airbench: it helps only
    with that). The slow copy is not checkpointed: a resumed run restarts it from the weights
    it resumes with."""

    def __init__(self, every: int = 5, decay: float = 0.95**5, bn_momentum: float = 0.4) -> None:
        if every < 1 or not 0 <= decay < 1 or not 0 < bn_momentum <= 1:
            raise ConfigError(
                f"lookahead: every={every} should be >= 1, decay={decay} in [0, 1) and "
                f"bn_momentum={bn_momentum} in (0, 1]."
            )
        self.every, self.decay, self.bn_momentum = every, decay, bn_momentum
        self.slow: list[tuple[Tensor, Tensor]] = []
        self.total = 1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module in pl_module.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = self.bn_momentum
        self.slow = [(t, t.detach().clone()) for t in pl_module.state_dict().values()
                     if t.is_floating_point()]  # fmt: skip
        # read once: Lightning's property sets up the training data again on every call
        total = trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ConfigError(
                "lookahead needs a run of known length: set trainer.max_epochs or max_steps."
            )
        self.total = max(1, int(total))

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step, total = trainer.global_step, self.total
        if step >= total:
            decay = 1.0  # the last step: the network becomes the slow copy
        elif step % self.every == 0:
            decay = self.decay * (step / total) ** 3
        else:
            return
        for fast, slow in self.slow:
            slow.lerp_(fast, 1 - decay)
            fast.copy_(slow)
