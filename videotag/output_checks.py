"""Checks made before a command's work starts, so that an output that cannot be
written stops the command at once rather than after hours of work: its folder can be
created and written to (`check_output_dir`, `check_output_file`), and a size known
in advance fits in the free space of a local disk (`check_free_space`).

Every output may be on any file system of TensorFlow (see `videotag.filesystem`).
"""

from __future__ import annotations

import os
from typing import Optional

import tensorflow as tf

from videotag.errors import OutputError
from videotag.filesystem import (WRITE_ERRORS, describe_write_error, format_bytes,
                                 free_bytes, join, parent)


def _folder_problem(path: str) -> Optional[str]:
    """Why folder `path` cannot be created or written to, or None when it can (it is
    created, and a small file is written in it and removed)."""
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        return f"{path} is a file, not a folder"
    probe = join(path, f".videotag-write-test-{os.getpid()}")
    try:
        tf.io.gfile.makedirs(path)
        with tf.io.gfile.GFile(probe, "wb") as f:
            f.write(b"videotag")
        tf.io.gfile.remove(probe)
    except WRITE_ERRORS as exc:
        reason = describe_write_error(exc)
        if reason is None:
            raise
        return reason
    return None


def check_output_dir(path: str, what: str = "output folder") -> None:
    """Creates folder `path` if needed and writes and removes a small file in it.

    Raises:
        OutputError: the folder cannot be created or written, naming it and why.
    """
    problem = _folder_problem(str(path) or ".")
    if problem:
        raise OutputError(f"cannot write the {what} {path}: {problem}")


def check_output_file(path: str, what: str = "output file") -> None:
    """Checks that file `path` can be written: its folder is created if needed and
    written to, and `path` is not a folder.

    Raises:
        OutputError: naming the path and why.
    """
    if tf.io.gfile.isdir(str(path)):
        raise OutputError(f"cannot write the {what} {path}: it is a folder")
    folder = parent(path) or "."
    problem = _folder_problem(folder)
    if problem:
        if not problem.startswith(folder):
            problem = f"its folder {folder}: {problem}"
        raise OutputError(f"cannot write the {what} {path}: {problem}")


def check_free_space(path: str, needed: int, what: str = "output") -> None:
    """Raises `OutputError` when the local disk of `path` has less than `needed` bytes
    free (nothing is checked on other file systems, see `free_bytes`)."""
    free = free_bytes(path)
    if free is not None and free < needed:
        raise OutputError(
            f"not enough space for the {what} {path}: it needs about "
            f"{format_bytes(needed)}, {format_bytes(free)} free")
