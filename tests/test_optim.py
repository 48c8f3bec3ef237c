"""The record-setters' update rules (fmnist/training/optim.py): Muon on conv filters with AdamW
on the rest, and lookahead, against torch and against their definitions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from fmnist.errors import ConfigError
from fmnist.training.optim import ConvMuon, Lookahead, orthogonalize
from fmnist.training.run import train


def test_orthogonalize_approximates_the_polar_factor() -> None:
    matrix = torch.randn(48, 144, generator=torch.Generator().manual_seed(0))
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    result = orthogonalize(matrix)
    singular = torch.linalg.svdvals(result)
    # Keller Jordan's quintic iteration leaves singular values near 1, not at 1
    assert singular.min() > 0.5 and singular.max() < 1.3
    assert torch.cosine_similarity(result.flatten(), (u @ vh).flatten(), dim=0) > 0.95
    tall = orthogonalize(matrix.T)  # rows > columns: the same factor, transposed
    assert torch.allclose(tall, result.T, atol=1e-6)


def net_and_grads(seed: int = 0) -> tuple[nn.Module, list[torch.Tensor]]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 3))
    grads = [torch.randn_like(p) for p in net.parameters()]
    return net, grads


def step(optimizer: torch.optim.Optimizer, net: nn.Module, grads: list[torch.Tensor]) -> None:
    for p, g in zip(net.parameters(), grads, strict=True):
        p.grad = g.clone()
    optimizer.step()


def test_conv_muon_is_adamw_off_the_conv_filters_and_orthogonal_steps_on_them() -> None:
    net, grads = net_and_grads()
    reference = nn.Sequential(*(m for m in net_and_grads()[0]))
    lr, wd, scale = 0.01, 0.1, 3.0
    # momentum 0: each conv step is exactly the orthogonalized gradient
    muon = ConvMuon(net.parameters(), lr=lr, weight_decay=wd, conv_lr_scale=scale, momentum=0.0)
    decayed = [p for p in reference.parameters() if p.ndim > 1]
    plain = [p for p in reference.parameters() if p.ndim <= 1]
    adamw = torch.optim.AdamW(
        [{"params": decayed}, {"params": plain, "weight_decay": 0.0}], lr=lr, weight_decay=wd
    )
    before = net[0].weight.detach().clone()
    for _ in range(3):
        step(muon, net, grads)
        step(adamw, reference, grads)
    for name in ("1.weight", "1.bias", "3.weight", "3.bias"):
        assert torch.allclose(net.state_dict()[name], reference.state_dict()[name], atol=1e-6)
    conv_lr = lr * scale
    expected = before
    for _ in range(3):
        update = orthogonalize(grads[0].flatten(1)).view_as(before)
        expected = expected * (1 - conv_lr * wd) - conv_lr * update
    assert torch.allclose(net[0].weight, expected, atol=1e-5)
    assert not torch.allclose(net[0].weight, reference[0].weight, atol=1e-3)


def test_conv_muon_refuses_a_bad_rate() -> None:
    with pytest.raises(ConfigError, match="conv_lr_scale=0"):
        ConvMuon(nn.Linear(2, 2).parameters(), conv_lr_scale=0)


def test_lookahead_pulls_toward_the_slow_copy_and_ends_on_it() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    lookahead = Lookahead(every=2, decay=0.8, bn_momentum=0.5)
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=4)
    lookahead.on_train_start(trainer, net)
    assert net[1].momentum == 0.5
    start = net[0].weight.detach().clone()
    trainer.global_step = 2
    with torch.no_grad():
        net[0].weight.add_(1.0)
    lookahead.on_train_batch_end(trainer)
    decay = 0.8 * (2 / 4) ** 3
    slow = start.lerp(start + 1.0, 1 - decay)
    assert torch.allclose(net[0].weight, slow)
    trainer.global_step = 3  # not a multiple of every: untouched
    with torch.no_grad():
        net[0].weight.add_(1.0)
    lookahead.on_train_batch_end(trainer)
    assert torch.allclose(net[0].weight, slow + 1.0)
    trainer.global_step = 4  # the last step: the network becomes the slow copy
    lookahead.on_train_batch_end(trainer)
    assert torch.allclose(net[0].weight, slow)


def test_lookahead_refuses_a_run_of_unknown_length() -> None:
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=float("inf"))
    with pytest.raises(ConfigError, match="max_epochs or max_steps"):
        Lookahead().on_train_start(trainer, nn.Linear(2, 2))


def test_a_run_trains_with_muon_and_lookahead(tiny_train_cfg, tmp_path) -> None:
    cfg = tiny_train_cfg(
        "model.filters=[8,16]",
        "model.hidden=32",
        "optimizer=muon",
        "+callbacks.lookahead._target_=fmnist.training.optim.Lookahead",
        output_dir=tmp_path / "muon",
    )
    train(cfg)
    # Lightning's loop stepped it (closure, scheduler) and checkpointed its state: momentum
    # for the conv filters, Adam's moments for the rest
    saved = torch.load(tmp_path / "muon" / "checkpoints" / "last.ckpt", weights_only=False)
    states = saved["optimizer_states"][0]["state"].values()
    assert {"momentum"} in [set(s) for s in states]
    assert all(s["step"] > 0 for s in states if "step" in s)
