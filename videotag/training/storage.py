"""The model directory's file system: local disk, or anything `tf.io.gfile` reaches
(`gs://`, `s3://`, `hdfs://`, TensorFlow's in-memory `ram://`).

What each kind of file system gives, and what this module does with it:

- local disk (a path without a scheme, or `file://`): files are written with
  Python's `open` and flushed to disk (`fsync`) with their directory; a rename
  within a file system is atomic, so a file or a directory is written under a
  temporary name and renamed into place; free space is known (`statvfs`).
- any other file system: everything goes through `tf.io.gfile`. Renames are not
  assumed atomic (on object stores a rename is a copy then a delete; on `ram://` a
  directory rename leaves its files behind), so they are emulated: write under a
  temporary name, read back and compare (verify), then move file by file (swap).
  Free space is not known (object stores have none to run out of; a quota error
  surfaces as a write error).

Paths are strings joined with `/` (`pathlib` would fold `ram://x` into `ram:/x`).
Errors of the file system come out as `OSError` (local) or `tf.errors.OpError`
(gfile); `WRITE_ERRORS` names both.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
from typing import Iterable, Optional

import tensorflow as tf

from videotag.errors import StorageError

gfile = tf.io.gfile
WRITE_ERRORS = (OSError, tf.errors.OpError)
_CHUNK = 8 << 20


def is_local(path: str) -> bool:
    """True for a path on local disk (no scheme, or `file://`)."""
    path = str(path)
    return "://" not in path or path.startswith("file://")


def _native(path: str) -> str:
    path = str(path)
    return path[len("file://"):] if path.startswith("file://") else path


def join(*parts: str) -> str:
    """`parts` joined with `/`, keeping a `scheme://` prefix intact."""
    return posixpath.join(*(str(p) for p in parts))


def basename(path: str) -> str:
    return posixpath.basename(str(path).rstrip("/"))


def read_bytes(path: str) -> bytes:
    """The whole file (local or through gfile)."""
    if is_local(path):
        with open(_native(path), "rb") as f:
            return f.read()
    with gfile.GFile(path, "rb") as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` (replacing it), flushed to disk when local. Not
    atomic by itself: see `write_atomic`."""
    if is_local(path):
        with open(_native(path), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return
    if gfile.exists(path):  # ram:// appends to a file opened "wb" instead of replacing it
        gfile.remove(path)
    with gfile.GFile(path, "wb") as f:
        f.write(data)


def sha256(path: str) -> str:
    """The SHA-256 of a file, read in chunks (hex digest)."""
    digest = hashlib.sha256()
    opener = open(_native(path), "rb") if is_local(path) else gfile.GFile(path, "rb")
    with opener as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def size(path: str) -> int:
    return os.path.getsize(_native(path)) if is_local(path) else gfile.stat(path).length


def write_atomic(path: str, data: bytes) -> None:
    """Replaces `path` by a file holding `data`, whole or not at all: written
    under `.<name>.tmp-<pid>` beside it, then renamed (local disk: an atomic
    rename, the directory flushed), or, elsewhere, read back and compared before the
    swap.

    Raises:
        StorageError: the write failed or read back different (the old file, if
            any, is untouched).
    """
    tmp = temporary_name(path)
    try:
        write_bytes(tmp, data)
        if not is_local(path) and read_bytes(tmp) != data:
            raise StorageError(f"{tmp}: the file read back differs from what was written")
        replace_file(tmp, path)
    except StorageError:
        remove_quietly(tmp)
        raise
    except WRITE_ERRORS as exc:
        remove_quietly(tmp)
        raise StorageError(f"could not write {path}: {describe(exc)}") from None


def temporary_name(path: str, suffix: str = "") -> str:
    """`.<name>.tmp-<pid><suffix>` beside `path`: hidden, and never a name that
    `path` is a prefix of (`ram://` takes a file for existing when a longer name
    starting with it does)."""
    return join(posixpath.dirname(str(path)), f".{basename(path)}.tmp-{os.getpid()}{suffix}")


def replace_file(tmp: str, path: str) -> None:
    """Renames the complete file `tmp` to `path`, replacing it: atomic on local disk
    (and the directory flushed); elsewhere `gfile.rename` (see the module's
    docstring for what that is worth)."""
    if is_local(path):
        os.replace(_native(tmp), _native(path))
        fsync_dir(posixpath.dirname(_native(path)) or ".")
    else:
        gfile.rename(tmp, path, overwrite=True)


def fsync_file(path: str) -> None:
    """Flushes a local file that another writer wrote, or a local directory's entries
    (renames, new files), to disk (no-op elsewhere)."""
    if not is_local(path):
        return
    fd = os.open(_native(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_file  # a directory is flushed the same way


def move_dir(src: str, dst: str, names: Iterable[str], last: Optional[str] = None) -> None:
    """Moves the directory `src` (holding the files `names`, and `last`) to `dst`,
    which must not exist.

    Local disk: one atomic rename. Elsewhere (emulated): `dst` is made and each
    file is moved into it, `last` after all the others, so that `dst` holds
    `last` only once everything else is there; then `src` is removed.
    """
    if is_local(src):
        os.rename(_native(src), _native(dst))
        fsync_dir(posixpath.dirname(_native(dst)) or ".")
        return
    gfile.makedirs(dst)
    for name in [n for n in names if n != last] + ([last] if last else []):
        gfile.rename(join(src, name), join(dst, name), overwrite=True)
    gfile.rmtree(src)


def remove_quietly(path: str) -> None:
    """Removes a file or a directory tree if it is there; errors are ignored (this
    runs while another error is being reported)."""
    try:
        if gfile.isdir(path):
            if is_local(path):
                shutil.rmtree(_native(path), ignore_errors=True)
            else:
                gfile.rmtree(path)
        elif gfile.exists(path):
            gfile.remove(path)
    except WRITE_ERRORS:
        pass


def free_bytes(path: str) -> Optional[int]:
    """Free bytes on the file system of `path` (or of its nearest existing parent)
    for this user; None when not known (not local disk)."""
    if not is_local(path):
        return None
    here = os.path.abspath(_native(path))
    while not os.path.exists(here):
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
    return shutil.disk_usage(here).free


def check_space(directory: str, needed: int, what: str, kept: str) -> None:
    """Stops before a write of `needed` bytes into `directory` when its file system
    has less free space (local disk only; see `free_bytes`).

    Args:
        what: the thing to be written, for the message ("checkpoint ckpt-...").
        kept: what stays intact, for the message.

    Raises:
        StorageError: not enough space (nothing was written).
    """
    free = free_bytes(directory)
    if free is not None and free < needed:
        raise StorageError(
            f"not enough space in {directory} for {what}: it needs {megabytes(needed)}, "
            f"{megabytes(free)} are free; nothing was written and {kept}"
        )


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def describe(exc: BaseException) -> str:
    """A file-system error in a few words (`No space left on device`, ...)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, tf.errors.OpError):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
