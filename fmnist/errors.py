"""User-facing errors.

Every error a user can fix (missing data, bad config, wrong checkpoint) derives from
``FmnistError``; the command-line entry points print its message as one paragraph
instead of a traceback, and exit with status 1.
"""


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
