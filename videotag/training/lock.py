"""Run ownership: one training run at a time on a model directory.

A run holds `<model_dir>/train.lock`, a small JSON file naming it (host, process id,
start time, a random token, and a heartbeat time that a thread of the running
trainer refreshes every `stale_seconds / 10`). A second run on the same directory
stops at once with a message naming the holder. A lock left by a run that is gone
is taken over with a warning:
- same host: the holder's process no longer exists (or the machine restarted since,
  or its process id now belongs to another process);
- another host: its heartbeat is older than `stale_seconds` (`train.lock_stale_seconds`;
  this compares the two hosts' clocks, which must agree to well within it).
The lock is released (removed) on every way out of the run; a run killed with
SIGKILL leaves it behind, for the next run to take over as above.

Atomicity, per file system:
- local disk: the lock is created with `os.link` from a complete temporary file
  (create-if-absent, and the file is whole when it appears; `O_CREAT|O_EXCL` where
  hard links are refused), replaced with an atomic rename, and every decision
  (read, judge, create or replace) is made under `flock` on the model directory, so
  two runs on one machine cannot both win;
- other file systems (`gs://`, `s3://`, `ram://`, ...), which have neither: the
  lock is written, read back after `SETTLE_SECONDS`, and kept only if it still
  holds this run's token (the last writer wins, and only it reads its own token
  back). The heartbeat and every checkpoint save read the lock again, so a run
  whose lock was overwritten stops before it writes a checkpoint.

Multi-worker runs hold one lock per cluster: the chief takes it, naming the cluster
(a digest of the TF_CONFIG cluster); the other workers check that the lock is there
(the model directory must be storage they share) and names their cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import tensorflow as tf

from videotag import filesystem
from videotag.errors import ModelError
from videotag.files import write_bytes

LOCK_FILE = "train.lock"
SETTLE_SECONDS = 1.0
HOST = socket.gethostname()
_ACTIVE_TOKENS: set = set()  # locks this process holds


@dataclass
class Holder:
    """What a lock file says about the run that holds it."""

    host: str
    pid: int
    started: str
    heartbeat: float
    token: str
    boot_id: str = ""
    pid_start: str = ""
    cluster: str = ""

    def describe(self) -> str:
        age = time.time() - self.heartbeat
        return (f"host {self.host}, pid {self.pid}, started {self.started}, last heartbeat "
                f"{_duration(age)} ago")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _read_proc(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of process `pid` (clock ticks since boot, Linux), "" if unknown."""
    stat = _read_proc(f"/proc/{pid}/stat")
    return stat.rpartition(")")[2].split()[19] if stat else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cluster_id() -> str:
    """A digest naming the TF_CONFIG cluster ("" outside a cluster)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return ""
    cluster = json.loads(raw).get("cluster", {})
    return hashlib.sha256(json.dumps(cluster, sort_keys=True).encode()).hexdigest()[:16]


class RunLock:
    """The lock of one model directory, for one run (a context manager).

    Args:
        model_dir: the model directory (local or `scheme://`).
        stale_seconds: a lock from another host whose heartbeat is older is stale.
        cluster: the cluster the lock is taken for (`cluster_id()`).
        warn: where warnings go (default stderr).
    """

    def __init__(self, model_dir: str, stale_seconds: float = 600.0, cluster: str = "",
                 warn: Optional[Callable[[str], None]] = None):
        self.model_dir = str(model_dir)
        self.path = filesystem.join(self.model_dir, LOCK_FILE)
        self.stale_seconds = stale_seconds
        self.local = filesystem.is_local(self.model_dir)
        self.warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        self.holder = Holder(
            host=HOST, pid=os.getpid(), started=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            heartbeat=time.time(), token=uuid.uuid4().hex,
            boot_id=_read_proc("/proc/sys/kernel/random/boot_id"),
            pid_start=_process_start(os.getpid()), cluster=cluster)
        self.lost: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # --- the lock file ---------------------------------------------------------

    def _encode(self) -> bytes:
        return json.dumps(asdict(self.holder), indent=1).encode()

    def read(self) -> Optional[Holder]:
        """The holder named by the lock file; None when there is no lock file.

        Raises:
            ModelError: the file is there but is not a lock (after a few tries).
        """
        for attempt in range(5):
            try:
                raw = json.loads(filesystem.read_bytes(self.path))
                return Holder(**{k: raw[k] for k in Holder.__dataclass_fields__ if k in raw})
            except (FileNotFoundError, tf.errors.NotFoundError):
                return None
            except (ValueError, TypeError, KeyError):
                time.sleep(0.2)  # being written (O_EXCL creation): look again
        raise ModelError(f"{self.path} is not a readable lock file; if no run is using "
                         f"{self.model_dir}, remove it")

    def _write_new(self) -> bool:
        """Creates the lock file if there is none; False when one appeared first."""
        tmp = filesystem.temporary_name(self.path, f"-{self.holder.token}")
        filesystem.write_in_place(tmp, self._encode())
        try:
            if self.local:
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    return False
                except OSError:  # no hard links here: exclusive create, then write
                    try:
                        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                    except FileExistsError:
                        return False
                    with os.fdopen(fd, "wb") as f:
                        f.write(self._encode())
                        f.flush()
                        os.fsync(f.fileno())
                filesystem.fsync(self.model_dir)
                return True
            try:
                tf.io.gfile.rename(tmp, self.path, overwrite=False)
            except tf.errors.AlreadyExistsError:
                return False
            return True
        finally:
            filesystem.remove_quietly(tmp)

    def _replace(self) -> None:
        write_bytes(self.path, self._encode(), "run lock")

    @contextlib.contextmanager
    def _guard(self):
        """Serialises lock decisions between processes (`flock` on the model
        directory, local disk only; a no-op where it is not available)."""
        if not self.local:
            yield
            return
        try:
            import fcntl

            fd = os.open(self.model_dir, os.O_RDONLY)
        except (ImportError, OSError):
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass
            yield
        finally:
            os.close(fd)  # releases the flock

    # --- taking, keeping and giving back -----------------------------------------

    def stale_reason(self, other: Holder) -> Optional[str]:
        """Why the run named by `other` is gone, or None when it may be running."""
        if other.host == HOST:
            if other.boot_id and self.holder.boot_id and other.boot_id != self.holder.boot_id:
                return "the machine has restarted since"
            if other.pid == os.getpid():
                if other.token in _ACTIVE_TOKENS:
                    return None
                return "its process id is now this process's (a restarted container)"
            if not _alive(other.pid):
                return f"there is no process {other.pid} on this host any more"
            started = _process_start(other.pid)
            if other.pid_start and started and started != other.pid_start:
                return f"process {other.pid} is now another program"
            return None
        age = time.time() - other.heartbeat
        if age > self.stale_seconds:
            return (f"its heartbeat is {_duration(age)} old, more than "
                    f"train.lock_stale_seconds={self.stale_seconds:g} s")
        return None

    def held_message(self, other: Holder) -> str:
        return (f"{self.model_dir} is in use by another training run ({other.describe()}; "
                f"lock file {self.path}): wait for it to end or use another --model_dir; if "
                "that run is gone for good, remove the lock file")

    def acquire(self) -> "RunLock":
        """Takes the lock (see the module's docstring) and starts the heartbeat.

        Raises:
            ModelError: another run holds the model directory.
        """
        tf.io.gfile.makedirs(self.model_dir)
        for _ in range(3):
            with self._guard():
                other = self.read()
                if other is None:
                    if not self._write_new():
                        continue
                else:
                    reason = self.stale_reason(other)
                    if reason is None:
                        raise ModelError(self.held_message(other))
                    self.warn(f"taking over {self.path} from a run that is gone ({other.host}, "
                              f"pid {other.pid}, started {other.started}): {reason}")
                    self._replace()
                if not self.local:
                    time.sleep(SETTLE_SECONDS)
                now = self.read()
                if now is not None and now.token == self.holder.token:
                    break
                if now is not None:
                    raise ModelError(self.held_message(now))
        else:
            raise ModelError(f"could not take the lock {self.path}: it kept changing")
        _ACTIVE_TOKENS.add(self.holder.token)
        self._thread = threading.Thread(target=self._beat, name="videotag-lock", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        """Refreshes the heartbeat until released; notes a lock taken by another run."""
        interval = max(0.2, self.stale_seconds / 10)
        while not self._stop.wait(interval):
            try:
                with self._guard():
                    now = self.read()
                    if now is None or now.token != self.holder.token:
                        self.lost = (now.describe() if now else "the lock file was removed")
                        return
                    self.holder.heartbeat = time.time()
                    self._replace()
            except Exception:  # noqa: BLE001  a full disk or a hiccup: try next time
                continue

    def check(self) -> None:
        """Raises when this run no longer holds the lock (another run took it over,
        or the file was removed): it must not write any more.

        Raises:
            ModelError: naming who holds the lock now.
        """
        now = self.read()
        if self.lost is None and (now is None or now.token != self.holder.token):
            self.lost = now.describe() if now else "the lock file was removed"
        if self.lost is not None:
            raise ModelError(
                f"this run no longer holds {self.path} ({self.lost}); it stops without "
                "writing, so that two runs never write into one model directory")

    def release(self) -> None:
        """Stops the heartbeat and removes the lock file if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        _ACTIVE_TOKENS.discard(self.holder.token)
        try:
            with self._guard():
                now = self.read()
                if now is not None and now.token == self.holder.token:
                    tf.io.gfile.remove(self.path)
        except (ModelError, *filesystem.WRITE_ERRORS):
            pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_worker_lock(model_dir: str, cluster: str) -> None:
    """For a worker other than the chief: the chief's lock must be there and name
    this cluster.

    Raises:
        ModelError: no lock (the model directory is not shared with the chief) or
            the lock of another run.
    """
    lock = RunLock(model_dir)
    holder = lock.read()
    if holder is None:
        raise ModelError(
            f"{lock.path} is not there although the chief has taken it: {model_dir} must be "
            "on storage that every worker shares (e.g. gs://... or a shared file system)")
    if holder.cluster != cluster:
        raise ModelError(f"{model_dir} is held by a run of another cluster "
                         f"({holder.describe()})")
