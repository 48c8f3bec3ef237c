"""The targets of "The CPU frontier", in one table: each preset, its seeds and what it must reach.

Accuracy is test accuracy; every seed must reach ``min_acc`` (and their mean ``min_mean_acc``
where set). Time is the median over the seeds of ``time``: ``fit_s`` (training, as
``train()`` reports it) or ``wall_s`` (the whole command: compose, fit, test, callbacks).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One point of the frontier: how to run it and the target it is judged against."""

    overrides: tuple[str, ...]  # what follows `python train.py`
    seeds: tuple[int, ...]
    min_acc: float  # every seed
    max_s: float  # median over seeds of `time`
    time: str = "fit_s"  # "fit_s" (training) or "wall_s" (whole command)
    min_mean_acc: float | None = None
    stretch_s: float | None = None

    @property
    def command(self) -> str:
        return " ".join(["python train.py", *self.overrides, "seed=S"])


#: The original study's test accuracy (its Keras CNN): the speedrun's accuracy target.
STUDY_ACC = 0.9103

PRESETS: dict[str, Preset] = {
    "speedrun": Preset(("experiment=speedrun",), (0, 1, 2, 3, 4), STUDY_ACC, 15.0, stretch_s=10.0),
    "quick": Preset(("experiment=quick",), (0, 1, 2), 0.930, 90.0),
    "default": Preset((), (0, 1), 0.938, 600.0, time="wall_s", min_mean_acc=0.940),
    "cpu_best": Preset(("experiment=cpu_best",), (0,), 0.950, 3600.0, time="wall_s"),
}


@dataclass(frozen=True)
class Reference:
    """The original study's Keras model, timed separately with TensorFlow on a kind of CPU."""

    cpu: str
    time_s: float
    acc: float = STUDY_ACC
    label: str = "Keras (original study), measured separately with TensorFlow 2.21"


#: Keyed by whether the bench's CPU has AMX (bf16 tiles): the study's model on the same kind.
KERAS_REFERENCE = {
    False: Reference("AMD EPYC, AVX2", 320.0),
    True: Reference("Intel Xeon, AMX", 134.0),
}

__all__ = ["KERAS_REFERENCE", "PRESETS", "STUDY_ACC", "Preset", "Reference"]
