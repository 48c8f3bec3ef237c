"""The targets of "The CPU frontier", in one table: each preset, its seeds and what it must reach.

Accuracy is test accuracy; every seed must reach ``min_acc`` (and their mean ``min_mean_acc``,
and a seed its own ``seed_acc``, where set). Time is the median over the seeds of ``time``:
``fit_s`` (training, as ``train()`` reports it) or ``wall_s`` (the whole command: compose,
fit, test, callbacks), *normalized* to a machine with a 200 GFLOP/s fp32 matmul peak:
``time x peak / 200``, the peak measured before and after the preset, the higher kept. The
recipes run at 65-90% of the peak, so a normalized time compares across the CPUs we see.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One point of the frontier: how to run it and the target it is judged against."""

    overrides: tuple[str, ...]  # what follows `python train.py`
    seeds: tuple[int, ...]
    min_acc: float  # every seed
    max_s: float  # median over seeds of `time`, normalized to REFERENCE_PEAK
    time: str = "fit_s"  # "fit_s" (training) or "wall_s" (whole command)
    min_mean_acc: float | None = None
    stretch_s: float | None = None
    seed_acc: tuple[tuple[int, float], ...] = ()  # (seed, accuracy) a seed must reach too

    @property
    def command(self) -> str:
        return " ".join(["python train.py", *self.overrides, "seed=S"])


#: The original study's test accuracy (its Keras CNN).
STUDY_ACC = 0.9103
#: The fp32 matmul peak (GFLOP/s) every time target refers to.
REFERENCE_PEAK = 200.0

PRESETS: dict[str, Preset] = {
    # Every seed above the study, the lowest with a margin of 0.12 points.
    "speedrun": Preset(("experiment=speedrun",), (0, 1, 2, 3, 4), 0.9115, 8.0),
    "quick": Preset(("experiment=quick",), (0, 1, 2), 0.930, 45.0),
    "default": Preset((), (0, 1), 0.938, 240.0, min_mean_acc=0.940),
    "cpu_best": Preset(
        ("experiment=cpu_best",), (0, 1), 0.953, 2400.0, time="wall_s", seed_acc=((0, 0.955),)
    ),
}


def normalized(seconds: float, peak_gflops: float) -> float:
    """Seconds on a machine of ``peak_gflops`` as seconds on the REFERENCE_PEAK machine."""
    return seconds * peak_gflops / REFERENCE_PEAK


@dataclass(frozen=True)
class Reference:
    """The original study's Keras model, timed separately with TensorFlow on a kind of CPU."""

    cpu: str
    time_s: float
    peak_gflops: float | None  # fp32 matmul peak of the machine it was timed on, if known
    acc: float = STUDY_ACC
    label: str = "Keras (original study), measured separately with TensorFlow 2.21"

    @property
    def normalized_s(self) -> float | None:
        return None if self.peak_gflops is None else normalized(self.time_s, self.peak_gflops)


#: Keyed by whether the bench's CPU has AMX (bf16 tiles): the study's model on the same kind.
#: The AMD time: first epoch at >= 91.03% test (8 epochs; 126 s for the study's 10), fp32
#: peak 205 GFLOP/s, timed in the same hour as a speedrun of 12.45 s on that machine.
KERAS_REFERENCE = {
    False: Reference("AMD EPYC, AVX-512", 104.0, 205.0),
    True: Reference("Intel Xeon, AMX", 134.0, None),  # its peak was not recorded
}

__all__ = [
    "KERAS_REFERENCE", "PRESETS", "REFERENCE_PEAK", "STUDY_ACC", "Preset", "Reference",
    "normalized",
]  # fmt: skip
