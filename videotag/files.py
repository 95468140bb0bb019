"""Output files on any file system TensorFlow has (local, gs://, s3://, hdfs://, ram://),
each appearing only when complete: predictions, embeddings, reports, exports, record
shards, and the files of a model directory (checkpoints, `model.keras`, `metrics.json`).

A file (or folder) is written under a temporary name beside its target and then
swapped in (`replace_file`, `replace_dir`):

- where the file system renames atomically (`videotag.filesystem.has_atomic_rename`:
  local paths, `file://`, `hdfs://`, `viewfs://`), by one rename; on local disk the
  file is flushed (`fsync`) before, and its folder after;
- elsewhere (object stores such as `gs://` and `s3://`, whose "rename" is a copy and
  a delete, and `ram://`, which renames a folder without its files) by write, verify,
  swap: a file's temporary copy is checked (its size), renamed over the target (the
  file system's copy and delete, which replaces one object by another at once), and
  the target checked; a folder is copied file by file, each checked, with its last
  files (a SavedModel's `saved_model.pb`, a checkpoint's manifest) last, then its
  temporary copy removed.

A write that fails (no space left, no permission) raises `OutputError` naming the
path (`output_errors`); the temporary file is removed and the previous target, if
any, is left as it was. The checks made before the work are in
`videotag.output_checks`; the path helpers (`join`, `is_local`, ...) are those of
`videotag.filesystem`, also reachable here.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from typing import IO, Iterator, Optional, Sequence

import tensorflow as tf

from videotag.errors import OutputError
from videotag.filesystem import (  # noqa: F401  (join, is_local, ...: used as files.*)
    WRITE_ERRORS, describe_write_error, fsync, has_atomic_rename, is_local, join,
    native, parent, remove_quietly, remove_tree, temporary_name)

# Files of a folder copied last by the emulated swap (a reader takes the folder as
# complete when they are there).
LAST_FILES = ("saved_model.pb",)
_BUFFER = 1 << 20


@contextlib.contextmanager
def output_errors(path: str, what: str = "output") -> Iterator[None]:
    """Inside, a failed write (no space, no permission, a file in the way) raises
    `OutputError` naming `path`; any other error passes unchanged."""
    try:
        yield
    except WRITE_ERRORS as exc:
        reason = describe_write_error(exc)
        if reason is None:
            raise
        raise OutputError(f"cannot write the {what} {path}: {reason}") from None


def make_parent(path: str, what: str = "output") -> None:
    """Creates the folder of `path` when it is missing (`OutputError` when it cannot)."""
    folder = parent(path)
    if folder:
        with output_errors(path, what):
            tf.io.gfile.makedirs(folder)


# --- swapping a complete file or folder in -------------------------------------------

def replace_file(tmp: str, target: str, size: Optional[int] = None,
                 what: str = "output") -> None:
    """Moves the complete file `tmp` to `target`, replacing it (see the module doc).

    Args:
        tmp: the written file, beside `target`.
        target: the final path.
        size: the bytes written, checked before the swap when given.
        what: what the file is, for messages.

    Raises:
        OutputError: the copy is short, or the file system refused.
    """
    with output_errors(target, what):
        if has_atomic_rename(target):
            fsync(tmp)
            tf.io.gfile.rename(tmp, target, overwrite=True)
            fsync(parent(target))
            return
        written = tf.io.gfile.stat(tmp).length
        if size is not None and written != size:
            raise OutputError(f"cannot write the {what} {target}: {written} of {size} bytes "
                              "reached the file system")
        tf.io.gfile.rename(tmp, target, overwrite=True)
        if tf.io.gfile.stat(target).length != written:
            raise OutputError(f"cannot write the {what} {target}: the copy has "
                              f"{tf.io.gfile.stat(target).length} of {written} bytes")


def replace_dir(tmp: str, target: str, last: Sequence[str] = LAST_FILES,
                what: str = "output") -> None:
    """Moves the complete folder `tmp` to `target`, which must not exist: one rename
    (its parent folder flushed on local disk), or a verified copy file by file with
    the files named `last` after all the others, then `tmp` removed (see the module
    doc).

    Raises:
        OutputError: a copy is short, or the file system refused.
    """
    with output_errors(target, what):
        if has_atomic_rename(target):
            tf.io.gfile.rename(tmp, target)
            fsync(parent(target))
            return
        files, start = [], len(tmp.rstrip("/"))
        for folder, _, names in tf.io.gfile.walk(tmp):
            tf.io.gfile.makedirs(target.rstrip("/") + folder.rstrip("/")[start:])
            paths = (f"{folder.rstrip('/')}/{name}" for name in names)
            # ram:// lists by name prefix: "assets.extra/x" shows as "assets/.extra"
            files += [p for p in paths if tf.io.gfile.exists(p) and not tf.io.gfile.isdir(p)]
        files.sort(key=lambda f: os.path.basename(f) in last)
        for source in files:
            dest = target.rstrip("/") + source[start:]
            tf.io.gfile.copy(source, dest)
            if tf.io.gfile.stat(dest).length != tf.io.gfile.stat(source).length:
                raise OutputError(f"cannot write the {what} {dest}: the copy is incomplete")
        remove_tree(tmp)


class _GuardedWriter(io.RawIOBase):
    """Writes to a `tf.io.gfile.GFile`, counting the bytes; a failed write raises
    `OutputError` naming the target."""

    def __init__(self, file, target: str, what: str):
        super().__init__()
        self.file, self.target, self.what, self.count = file, target, what, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        with output_errors(self.target, self.what):
            self.file.write(bytes(data))
        self.count += len(data)
        return len(data)


@contextlib.contextmanager
def open_output(path: Optional[str], binary: bool = False,
                what: str = "output file") -> Iterator[IO]:
    """A file to write `path` through; standard output when `path` is None or "".

    The folder of `path` is created when missing. The file is written under
    `temporary_name(path)` and swapped in with
    `replace_file` when the block ends without an error; otherwise the temporary file
    is removed: a failed run never leaves a partial file, and a previous `path` stays
    as it was. A failed write raises `OutputError` naming `path` (errors of the
    block's own work pass unchanged).

    Args:
        path: the output, on any file system of TensorFlow.
        binary: yield a binary file (default: UTF-8 text).
        what: what the file is, for messages.
    """
    if not path:
        yield sys.stdout.buffer if binary else sys.stdout
        return
    make_parent(path, what)
    tmp = temporary_name(path)
    remove_quietly(tmp)  # left by a killed process of the same id (ram:// would append)
    raw = tf.io.gfile.GFile(tmp, "wb")
    guarded = _GuardedWriter(raw, path, what)
    guarded.write(b"")  # opens the file now: a folder that cannot be written fails here
    buffered = io.BufferedWriter(guarded, _BUFFER)
    out = buffered if binary else io.TextIOWrapper(buffered, encoding="utf-8", newline="")
    try:
        yield out
        out.flush()
        with output_errors(path, what):
            raw.close()
        replace_file(tmp, path, guarded.count, what)
    finally:
        for closing in (out.close, raw.close):  # a failed block: what is buffered goes
            try:                                # to the temporary file, then it goes
                closing()
            except Exception:  # noqa: BLE001  (already failing or done)
                pass
        remove_quietly(tmp)


@contextlib.contextmanager
def closing(writer, path: str, what: str = "output file") -> Iterator:
    """Yields `writer` and closes it at the end; a close that fails to write (the
    last buffered bytes reach the disk then) raises `OutputError` naming `path`."""
    try:
        yield writer
    finally:
        with output_errors(path, what):
            writer.close()


def write_bytes(path: str, data: bytes, what: str = "output file") -> None:
    """Writes `data` to `path` whole (see `open_output`)."""
    with open_output(path, binary=True, what=what) as out:
        out.write(data)


def write_text(path: str, text: str, what: str = "output file") -> None:
    """Writes UTF-8 `text` to `path` whole (see `open_output`)."""
    write_bytes(path, text.encode("utf-8"), what)


def write_figure(fig, path: str, what: str = "figure") -> None:
    """Writes a matplotlib figure as a PNG file whole (see `open_output`) and closes it."""
    from matplotlib import pyplot as plt

    data = io.BytesIO()
    fig.savefig(data, format="png")
    plt.close(fig)
    write_bytes(path, data.getvalue(), what)


@contextlib.contextmanager
def local_output(path: str, what: str = "output file") -> Iterator[str]:
    """A local file name to write `path` through, for writers that need a seekable
    local file (NumPy headers rewritten at the end, video encoders).

    On a local file system it is `temporary_name(path)` with the extension of
    `path` (some writers pick the format by it); elsewhere a file in the
    local temporary folder, copied to `path` at the end. Either way `path` appears
    only when the block ends without an error. The block's own writes should run
    under `output_errors(path)`.
    """
    make_parent(path, what)
    if is_local(path):
        local = native(path)
        # the extension is kept: some writers pick the format by it
        tmp = temporary_name(local, os.path.splitext(local)[1])
        staged = None
    else:
        staged = tempfile.mkdtemp(prefix="videotag-")
        tmp = os.path.join(staged, os.path.basename(str(path)))
    try:
        yield tmp
        if staged is None:
            replace_file(tmp, path, what=what)
        else:
            remote_tmp = temporary_name(path)
            try:
                remove_quietly(remote_tmp)
                with output_errors(path, what):
                    tf.io.gfile.copy(tmp, remote_tmp)
                replace_file(remote_tmp, path, os.path.getsize(tmp), what)
            finally:
                remove_quietly(remote_tmp)
    finally:
        remove_quietly(tmp)
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)


@contextlib.contextmanager
def output_path(path: str, folder: bool = False, what: str = "output") -> Iterator[str]:
    """A temporary name on the file system of `path` for writers that take a path
    (`tf.io.TFRecordWriter`, `tf.saved_model.save`): when the block ends without an
    error it is swapped in as `path` (`replace_file`, or `replace_dir` for a
    `folder`, which `path` must not be yet); otherwise it is removed. The block's
    own writes should run under `output_errors(path)`."""
    make_parent(path, what)
    tmp = temporary_name(path)
    remove_quietly(tmp)
    try:
        yield tmp
        if folder:
            replace_dir(tmp, path, what=what)
        else:
            replace_file(tmp, path, what=what)
    finally:
        remove_quietly(tmp)
