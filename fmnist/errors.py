"""User-facing errors.

Every error a user can fix (missing data, bad config, wrong checkpoint) derives from
``FmnistError``; the command-line entry points print its message as one paragraph
instead of a traceback, and exit with status 1.
"""

from __future__ import annotations


class FmnistError(Exception):
    """An error whose message tells the user what to do."""


class DatasetNotFoundError(FmnistError):
    """The four Fashion-MNIST IDX files could not be found or downloaded."""


class CorruptDatasetError(FmnistError):
    """An IDX file exists but its content is not a valid Fashion-MNIST file."""


class ConfigError(FmnistError, ValueError):
    """A configuration value is invalid; raised before any training starts."""


class CheckpointError(FmnistError):
    """A checkpoint is missing, unreadable or does not match the model config."""


class TrainingDivergedError(FmnistError):
    """The loss or the weights became NaN/infinite; the last good checkpoint is kept."""


class OutputDirError(FmnistError):
    """An output directory or file cannot be created or written."""


class RunDirBusyError(OutputDirError):
    """Another process is running in the same run directory."""


class UnreadableRunError(FmnistError):
    """A run directory holds a file that no run writes; the message is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"unreadable: {reason}")
        self.reason = reason


#: pip's name for the modules whose distribution is named otherwise.
_DISTRIBUTIONS = {"skimage": "scikit-image", "PIL": "Pillow", "sklearn": "scikit-learn"}


class MissingPackageError(FmnistError, ImportError):
    """A package this path needs is not installed: the install's fault, never the input's."""

    @classmethod
    def from_import(cls, exc: ImportError, what: str) -> MissingPackageError:
        """``what`` (e.g. "Reading images") needs the module ``exc`` failed to import; the
        message names the package and the install line that brings it."""
        module = (exc.name or str(exc)).split(".")[0]
        package = _DISTRIBUTIONS.get(module, module)
        return cls(
            f"{what} needs the package {package!r}, which is not installed in this environment"
            f" ({exc}): pip install {package}, or reinstall fmnist with pip install ."
        )
