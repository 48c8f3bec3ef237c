"""Lightning callbacks that leave the explanations of a run behind (configs in conf/callbacks/)."""

from fmnist.callbacks.activation_capture import ActivationCapture
from fmnist.callbacks.learning_curves import LearningCurves
from fmnist.callbacks.permutation_importance import PermutationImportance
from fmnist.callbacks.robustness import Robustness
from fmnist.callbacks.temperature import TemperatureScaling

__all__ = [
    "ActivationCapture",
    "LearningCurves",
    "PermutationImportance",
    "Robustness",
    "TemperatureScaling",
]
