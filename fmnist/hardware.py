"""What the CPU can do, read from ``/proc/cpuinfo``, and the precision a CPU run should use.

bf16 pays where the CPU does bf16 arithmetic in hardware, AMX tiles or AVX512-BF16: on a
2-core Zen 4 EPYC (AVX512-BF16, no AMX) training ran 1.32x (speedrun), 1.68x (quick) and
1.36x (default) faster than fp32 at the same test accuracy (``python -m bench.run --parts
precision``, bench/results.md). Without either, bf16 is emulated and fp32 stays.
:func:`cpu_precision` is the OmegaConf resolver ``fmnist.cpu_precision`` (conf/trainer).
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

#: Read on every call, not cached, so tests can point it at a fake file.
CPUINFO = Path("/proc/cpuinfo")
#: The flags that matter for training speed, in the order a report lists them.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
#: Flags of bf16 in hardware: AMX tiles, or AVX512-BF16's dot-product instructions (Zen 4).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
RESOLVER = "fmnist.cpu_precision"


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name : value`` line of ``/proc/cpuinfo`` (None off Linux)."""
    if not CPUINFO.is_file():
        return None
    for line in CPUINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model() -> str:
    """The CPU's marketing name, e.g. ``AMD EPYC 9654``: numbers depend on it."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The first core's feature flags (empty when unknown)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def has_bf16_hardware() -> bool:
    """Whether the CPU does bf16 arithmetic in hardware: AMX tiles or AVX512-BF16."""
    return not cpu_flags().isdisjoint(BF16_FLAGS)


def cpu_precision(accelerator: str = "cpu") -> str:
    """Lightning's precision for a run on ``accelerator``: ``bf16-mixed`` where it runs on a
    CPU that does bf16 in hardware, ``32-true`` elsewhere (``trainer=gpu`` sets its own)."""
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    return "bf16-mixed" if on_cpu and has_bf16_hardware() else "32-true"
