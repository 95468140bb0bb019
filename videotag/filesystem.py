"""What each file system TensorFlow reaches gives, and the small operations on it
written once for every file (outputs: `videotag.files`; model directories:
`videotag.training`).

- Local disk (a path without a scheme, or `file://`): a rename is atomic; files
  written here are flushed to disk (`fsync`) with their folder; free space is known
  (`statvfs`).
- `hdfs://`, `viewfs://` (TensorFlow's Hadoop file system): a rename is one
  NameNode operation, atomic for a file or a whole folder. (Replacing a file,
  TensorFlow deletes the target, then renames: for a moment there is no target,
  never a partial one.)
- Any other (`gs://`, `s3://`, `ram://`, ...): a rename is not atomic (object stores
  copy, then delete; `ram://` renames a folder without its files), so `videotag.files`
  emulates it: write, verify, swap. Free space is not known (a quota shows as a
  failed write).

`has_atomic_rename` is the one rule. Paths are strings joined with `/` (`pathlib`
would fold `ram://x` into `ram:/x`). A failed write is an `OSError` or a
`tf.errors.OpError` (`WRITE_ERRORS`); `describe_write_error` says why when a user can
fix it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
from typing import List, Optional

import tensorflow as tf

# File systems whose rename is one atomic step ("" is a local path).
ATOMIC_RENAME_SCHEMES = ("", "file", "hdfs", "viewfs")
WRITE_ERRORS = (OSError, tf.errors.OpError)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


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


def native(path: str) -> str:
    """A local path as the operating system takes it (without `file://`)."""
    path = str(path)
    return path[len("file://"):] if path.startswith("file://") else path


def parent(path: str) -> str:
    """The folder holding `path` ("" for a bare local file name)."""
    path = str(path).rstrip("/")
    head = os.path.dirname(path)
    root = path.split("://", 1)[0] + "://" if scheme(path) else ""
    return head if len(head) >= len(root) else root


def join(*parts: str) -> str:
    """`parts` joined with `/`, a `scheme://` prefix kept (an empty first part is
    skipped)."""
    return posixpath.join(*(str(p) for p in parts))


def basename(path: str) -> str:
    """The last name of `path` (a trailing `/` ignored)."""
    return posixpath.basename(str(path).rstrip("/"))


def temporary_name(path: str, suffix: str = "") -> str:
    """`.<name>.tmp-<pid><suffix>` beside `path`: hidden (globs of the outputs skip
    it), and never a name that `path` is a prefix of (`ram://` takes a file for
    existing when a longer name starting with it does)."""
    return join(parent(path), f".{basename(path)}.tmp-{os.getpid()}{suffix}")


def others_temporaries(path: str, suffix: str = "") -> List[str]:
    """The `temporary_name`s of `path` made by other processes (left by a process
    that stopped in the middle of its write)."""
    pattern = join(parent(path), f".{basename(path)}.tmp-*{suffix}")
    return [f for f in tf.io.gfile.glob(pattern) if f != temporary_name(path, suffix)]


# --- reading and writing in place ----------------------------------------------------

def read_bytes(path: str) -> bytes:
    """The whole file."""
    with tf.io.gfile.GFile(str(path), "rb") as f:
        return f.read()


def write_in_place(path: str, data: bytes) -> None:
    """Writes `data` to `path`, replacing it; flushed to disk when local. Not atomic:
    for a file whose previous content must survive a failure, see
    `videotag.files.write_bytes`; this is for files inside a folder swapped in whole."""
    if is_local(path):
        with open(native(path), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return
    if tf.io.gfile.exists(path):  # ram:// appends to a file opened "wb" instead of replacing it
        tf.io.gfile.remove(path)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def size(path: str) -> int:
    """The bytes of file `path`."""
    return tf.io.gfile.stat(str(path)).length


def fsync(path: str) -> None:
    """Flushes a local file that another writer wrote, or a local folder's entries
    (renames, new files), to disk; nothing elsewhere."""
    if not is_local(path):
        return
    fd = os.open(native(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: str) -> None:
    """Removes a file or folder if it is there; errors are ignored (clean-up on a path
    that is already failing)."""
    try:
        if tf.io.gfile.isdir(path):
            remove_tree(path)
        elif tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except WRITE_ERRORS:
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


# --- free space ----------------------------------------------------------------------

def free_bytes(path: str) -> Optional[int]:
    """Free bytes on the local disk holding `path` (or its nearest existing folder);
    None for other file systems, whose free space is not known."""
    if not is_local(path):
        return None
    folder = os.path.abspath(native(path))
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def format_bytes(count: int) -> str:
    """`30.4 MB`, `1.07 GB`."""
    return f"{count / 1e6:.1f} MB" if count < 1e9 else f"{count / 1e9:.2f} GB"


# --- what a failed write means -------------------------------------------------------

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


def describe(exc: BaseException) -> str:
    """Any error of a file system in its own few words (`No space left on device`)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, tf.errors.OpError):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
