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


class StorageError(VideotagError):
    """A file system refused a write or holds a damaged file (no space left, a
    truncated checkpoint, a write that read back different); the message names the
    path and what was kept intact."""


class OutputError(StorageError):
    """An output cannot be written: its folder cannot be created or written, or the
    file system ran out of space (the message names the path). A kind of
    `StorageError`: code that catches a failed write of the model directory catches
    this one too."""


class RunStopped(VideotagError):
    """A training run stopped on request (SIGTERM or SIGINT) after saving a
    checkpoint; the same command resumes it. Not a failure: the `videotag` commands
    print the message without `error:` and exit with `exit_status` (128 + the
    signal's number, as for a process the signal ended)."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number
        self.exit_status = 128 + signal_number
