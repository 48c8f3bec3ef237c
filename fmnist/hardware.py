"""What the CPU can do, read from ``/proc/cpuinfo``, and the precision a CPU run should use.

bf16 pays on CPUs with AMX (Intel Sapphire Rapids and later): oneDNN runs bf16 convolutions
and matmuls on its tile units, several times faster than fp32. Without AMX, bf16 is emulated
or runs on AVX-512 at about fp32 speed plus conversions, so fp32 stays. ``fmnist.config``
registers :func:`cpu_precision` as the OmegaConf resolver ``fmnist.cpu_precision``, used as
``precision: ${fmnist.cpu_precision:}`` in ``conf/trainer/cpu_fast.yaml``.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: Read on every call, not cached, so tests can point it at a fake file.
CPUINFO = Path("/proc/cpuinfo")
#: The flags that matter for training speed, in the order a report lists them.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
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


def has_amx_bf16() -> bool:
    """Whether the CPU multiplies bf16 matrices on AMX tiles: where bf16 training pays."""
    return "amx_bf16" in cpu_flags()


def cpu_precision() -> str:
    """Lightning's precision for a CPU run: ``bf16-mixed`` with AMX, ``32-true`` otherwise."""
    return "bf16-mixed" if has_amx_bf16() else "32-true"
