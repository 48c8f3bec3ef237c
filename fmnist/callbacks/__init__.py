"""Lightning callbacks that leave the explanations of a run behind (configs in conf/callbacks/);
each a :class:`Guest`, whose failure costs the run one log line."""

from fmnist.callbacks.activation_capture import ActivationCapture
from fmnist.callbacks.guest import Guest
from fmnist.callbacks.learning_curves import LearningCurves
from fmnist.callbacks.permutation_importance import PermutationImportance
from fmnist.callbacks.robustness import Robustness
from fmnist.callbacks.temperature import TemperatureScaling

__all__ = [
    "ActivationCapture",
    "Guest",
    "LearningCurves",
    "PermutationImportance",
    "Robustness",
    "TemperatureScaling",
]
