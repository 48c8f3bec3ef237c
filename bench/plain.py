"""The reference: the training loop of a run config written in plain PyTorch.

Same network, optimizer, schedule, batches and augmentation as ``train(cfg)``, without
Lightning, so the two loop times give Lightning's overhead.
"""

from __future__ import annotations

import inspect
import time

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from bench.timing import synchronize
from fmnist.config import build
from fmnist.data import FashionMNISTDataModule
from fmnist.training.module import ClassificationModule
from fmnist.training.run import build_data_and_module


def build_parts(cfg: DictConfig) -> tuple[FashionMNISTDataModule, ClassificationModule]:
    """The datamodule (set up) and module exactly as ``fmnist.training.run.train`` builds them."""
    datamodule, module = build_data_and_module(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module.classifier.preprocess.set_statistics(*datamodule.statistics)  # as Lightning's setup
    return datamodule, module


def plain_training_loop(cfg: DictConfig, steps: int) -> dict[str, float]:
    """Train ``steps`` steps of ``cfg`` in plain PyTorch; returns the loop's wall time."""
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build_parts(cfg)
    device = torch.device("cuda" if cfg.trainer.get("accelerator") == "gpu" else "cpu")
    module = module.to(device).train()
    optimizer = build(cfg.optimizer)(params=module.parameters())
    scheduler = None
    if cfg.get("scheduler"):
        factory = build(cfg.scheduler)
        names = inspect.signature(factory.func).parameters
        scheduler = factory(optimizer, **{n: steps for n in ("total_steps", "T_max") if n in names})
    smoothing = module.hparams.label_smoothing
    bf16 = "bf16" in str(cfg.trainer.get("precision"))
    done = 0
    synchronize()
    start = time.perf_counter()
    while done < steps:
        for images, labels in datamodule.train_dataloader():
            images, labels = images.to(device), labels.to(device)
            x = datamodule.augment(images)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = module.classifier.net_logits(x)
                loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            done += 1
            if done == steps:
                break
    synchronize()
    return {"loop_s": time.perf_counter() - start, "steps": done}
