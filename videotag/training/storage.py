"""Writes into a model directory (checkpoints, `model.keras`): their free-space check
and their failures, as `StorageError` messages that say what was kept intact.

The files themselves go through `videotag.files` (swapped in whole: one rename where
the file system has atomic renames, write-verify-swap elsewhere) and
`videotag.filesystem` (paths, flushing, free space), like every other output.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from videotag.errors import OutputError, StorageError
from videotag.filesystem import WRITE_ERRORS, describe, format_bytes, free_bytes, remove_quietly


def check_space(directory: str, needed: int, what: str, kept: str) -> None:
    """Stops before a write of `needed` bytes into `directory` when its file system
    has less free space (local disk only; see `videotag.filesystem.free_bytes`).

    Args:
        what: the thing to be written, for the message ("checkpoint ckpt-...").
        kept: what stays intact, for the message.

    Raises:
        StorageError: not enough space (nothing was written).
    """
    free = free_bytes(directory)
    if free is not None and free < needed:
        raise StorageError(
            f"not enough space in {directory} for {what}: it needs {format_bytes(needed)}, "
            f"{format_bytes(free)} are free; nothing was written and {kept}"
        )


@contextlib.contextmanager
def failed_write(tmp: str, what: str, after: str) -> Iterator[None]:
    """Inside, a failed write (the file system's error, or an `OutputError` of the
    swap) removes `tmp` and raises `StorageError`: `could not write <what>: <what the
    file system said><after>` (`after` says what was kept). Other errors pass
    unchanged."""
    try:
        yield
    except (*WRITE_ERRORS, OutputError) as exc:
        remove_quietly(tmp)
        raise StorageError(f"could not write {what}: {describe(exc)}{after}") from None
