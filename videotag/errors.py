"""Project exceptions: errors a user can cause, with actionable messages.

The CLIs print these without a traceback and exit non-zero.
"""


class VideotagError(Exception):
    """Base class of every error a user can cause (bad config, bad data, ...)."""


class ConfigError(VideotagError):
    """A configuration key is unknown, has the wrong type or an invalid value."""


class DataError(VideotagError):
    """Input data is missing, corrupt or does not match the record schema."""


class ModelError(VideotagError):
    """A model directory, SavedModel or model name cannot be used."""


class TrainingError(VideotagError):
    """Training cannot go on (a loss that is not finite); the message says what was kept."""


class OutputError(VideotagError):
    """An output cannot be written: its folder cannot be created or written, or the
    file system ran out of space (the message names the path)."""
