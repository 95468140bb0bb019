"""Output files on any file system TensorFlow has (local, gs://, s3://, hdfs://, ram://),
each appearing only when complete, and the checks made before a command's work starts.

Every output goes through `tf.io.gfile`, so a path may name any of TensorFlow's file
systems. A file (or folder) is written under a temporary name beside its target and
then swapped in (`replace_file`, `replace_dir`):

- where the file system renames atomically (local paths, `file://`, `hdfs://`,
  `viewfs://`: `ATOMIC_RENAME_SCHEMES`), by one rename;
- elsewhere (object stores such as `gs://` and `s3://`, whose "rename" is a copy and
  a delete, and `ram://`, which renames a folder without its files) by write, verify,
  swap: the temporary copy's size is checked, it is copied over the target, the
  target's size is checked, and the temporary copy is removed. A folder is copied
  file by file with its `LAST_FILES` (a SavedModel's `saved_model.pb`) last.

A write that fails (no space left, no permission) raises `OutputError` naming the
path (`output_errors`); the temporary file is removed and the previous target, if
any, is left as it was. `check_output_dir` / `check_output_file` find an output
that cannot be written before any work; `check_free_space` compares a size known in
advance with the free space of a local disk.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import sys
import tempfile
from typing import IO, Iterator, Optional

import tensorflow as tf

from videotag.errors import OutputError

# File systems whose rename is one atomic step ("" is a local path).
ATOMIC_RENAME_SCHEMES = ("", "file", "hdfs", "viewfs")
# Files of a folder copied last by the emulated swap (a reader takes the folder as
# complete when they are there).
LAST_FILES = ("saved_model.pb",)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
_BUFFER = 1 << 20


# --- paths ---------------------------------------------------------------------------

def scheme(path: str) -> str:
    """The file system of `path`: "gs", "ram", ... ("" for a local path)."""
    head, sep, _ = str(path).partition("://")
    return head.lower() if sep and "/" not in head else ""


def is_local(path: str) -> bool:
    """True for a path of the local file system (no scheme, or `file://`)."""
    return scheme(path) in ("", "file")


def has_atomic_rename(path: str) -> bool:
    """True when the file system of `path` renames files and folders atomically."""
    return scheme(path) in ATOMIC_RENAME_SCHEMES


def parent(path: str) -> str:
    """The folder holding `path` ("" for a bare local file name)."""
    path = str(path).rstrip("/")
    head = os.path.dirname(path)
    root = path.split("://", 1)[0] + "://" if scheme(path) else ""
    return head if len(head) >= len(root) else root


def join(folder: str, name: str) -> str:
    """`folder/name` on any file system (`name` alone when `folder` is "")."""
    folder = str(folder)
    if not folder:
        return name
    return folder + name if folder.endswith("/") else f"{folder}/{name}"


def temporary_name(path: str) -> str:
    """A name beside `path` for writing it: hidden, so globs of the outputs skip it."""
    path = str(path).rstrip("/")
    return join(parent(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")


# --- errors --------------------------------------------------------------------------

def describe_write_error(exc: BaseException) -> Optional[str]:
    """Why a write failed ("no space left on the device", ...) when the error is one a
    user can fix; None for any other error."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code in _NO_SPACE or "No space left" in text or "File too large" in text \
            or "Disk quota" in text:
        return "no space left on the device" if code != errno.EFBIG and \
            "File too large" not in text else "the file size limit was reached"
    if code in _NOT_WRITABLE or isinstance(exc, tf.errors.PermissionDeniedError) \
            or "Read-only file system" in text or "Permission denied" in text:
        return "not writable (permission denied or a read-only file system)"
    if code in (errno.ENOTDIR,) or "Not a directory" in text or "is not a directory" in text:
        return "a file is in the way of a folder of the path"
    if code in (errno.ENOENT,) or isinstance(exc, tf.errors.NotFoundError):
        return "a folder of the path does not exist and cannot be created"
    return None


@contextlib.contextmanager
def output_errors(path: str, what: str = "output") -> Iterator[None]:
    """Inside, a failed write (no space, no permission, a file in the way) raises
    `OutputError` naming `path`; any other error passes unchanged."""
    try:
        yield
    except (OSError, tf.errors.OpError) as exc:
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


def remove_quietly(path: str) -> None:
    """Removes a file or folder if it is there; errors are ignored (clean-up on a path
    that is already failing)."""
    try:
        if tf.io.gfile.isdir(path):
            remove_tree(path)
        elif tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except (OSError, tf.errors.OpError):
        pass


def remove_tree(path: str) -> None:
    """Removes folder `path` and everything in it. Where `tf.io.gfile.rmtree` fails on
    a name the folder's listing shows but the file system does not have (ram:// lists
    by name prefix: with "assets.extra/x", "assets/" lists ".extra"), the files are
    removed one by one, then the folders, deepest first."""
    try:
        tf.io.gfile.rmtree(path)
        return
    except tf.errors.NotFoundError:
        pass
    tree = list(tf.io.gfile.walk(path))
    for folder, _, names in tree:
        for name in names:
            name = f"{folder.rstrip('/')}/{name}"
            if tf.io.gfile.exists(name) and not tf.io.gfile.isdir(name):
                tf.io.gfile.remove(name)
    for folder, _, _ in reversed(tree):  # ram:// folders are only name prefixes
        with contextlib.suppress(tf.errors.NotFoundError):
            tf.io.gfile.remove(folder)


# --- checks before the work ---------------------------------------------------------

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
    except (OSError, tf.errors.OpError) as exc:
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


def free_bytes(path: str) -> Optional[int]:
    """Free bytes on the local disk holding `path` (or its nearest existing folder);
    None for other file systems, whose free space is not known."""
    if not is_local(path):
        return None
    folder = os.path.abspath(str(path).split("://", 1)[-1])
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def check_free_space(path: str, needed: int, what: str = "output") -> None:
    """Raises `OutputError` when the local disk of `path` has less than `needed` bytes
    free (nothing is checked on other file systems)."""
    free = free_bytes(path)
    if free is not None and free < needed:
        raise OutputError(
            f"not enough space for the {what} {path}: it needs about {_size(needed)}, "
            f"{_size(free)} free")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


# --- swapping a complete file or folder in -------------------------------------------

def replace_file(tmp: str, target: str, size: Optional[int] = None) -> None:
    """Moves the complete file `tmp` to `target`, replacing it (see the module doc).

    Args:
        tmp: the written file, beside `target`.
        target: the final path.
        size: the bytes written, checked before the swap when given.

    Raises:
        OutputError: the copy is short, or the file system refused.
    """
    with output_errors(target):
        if has_atomic_rename(target):
            tf.io.gfile.rename(tmp, target, overwrite=True)
            return
        written = tf.io.gfile.stat(tmp).length
        if size is not None and written != size:
            raise OutputError(f"cannot write the output {target}: {written} of {size} bytes "
                              "reached the file system")
        if tf.io.gfile.exists(target):  # some (ram://) append to a file copied over
            tf.io.gfile.remove(target)
        tf.io.gfile.copy(tmp, target)
        if tf.io.gfile.stat(target).length != written:
            raise OutputError(f"cannot write the output {target}: the copy has "
                              f"{tf.io.gfile.stat(target).length} of {written} bytes")
        tf.io.gfile.remove(tmp)


def replace_dir(tmp: str, target: str) -> None:
    """Moves the complete folder `tmp` to `target` (which must not exist): one rename,
    or a verified copy file by file with `LAST_FILES` last (see the module doc)."""
    with output_errors(target):
        if has_atomic_rename(target):
            tf.io.gfile.rename(tmp, target)
            return
        files, start = [], len(tmp.rstrip("/"))
        for folder, _, names in tf.io.gfile.walk(tmp):
            tf.io.gfile.makedirs(target.rstrip("/") + folder.rstrip("/")[start:])
            paths = (f"{folder.rstrip('/')}/{name}" for name in names)
            # ram:// lists by name prefix: "assets.extra/x" shows as "assets/.extra"
            files += [p for p in paths if tf.io.gfile.exists(p) and not tf.io.gfile.isdir(p)]
        files.sort(key=lambda f: os.path.basename(f) in LAST_FILES)
        for source in files:
            dest = target.rstrip("/") + source[start:]
            tf.io.gfile.copy(source, dest)
            if tf.io.gfile.stat(dest).length != tf.io.gfile.stat(source).length:
                raise OutputError(f"cannot write the output {dest}: the copy is incomplete")
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
        replace_file(tmp, path, guarded.count)
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
        local = str(path).split("://", 1)[-1]
        # the extension is kept: some writers pick the format by it
        tmp = temporary_name(local) + os.path.splitext(local)[1]
        staged = None
    else:
        staged = tempfile.mkdtemp(prefix="videotag-")
        tmp = os.path.join(staged, os.path.basename(str(path)))
    try:
        yield tmp
        if staged is None:
            replace_file(tmp, path)
        else:
            remote_tmp = temporary_name(path)
            try:
                remove_quietly(remote_tmp)
                with output_errors(path, what):
                    tf.io.gfile.copy(tmp, remote_tmp)
                replace_file(remote_tmp, path, os.path.getsize(tmp))
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
            replace_dir(tmp, path)
        else:
            replace_file(tmp, path)
    finally:
        remove_quietly(tmp)
