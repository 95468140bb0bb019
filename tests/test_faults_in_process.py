"""Faults of a run checked on the run lock and the signal handler alone, in the
test's process: locks left by runs that are gone, a live lock, a lock taken over
while a run holds it, the lock on a file system without atomic create, and a
second SIGTERM/SIGINT. (The runs themselves are in tests/test_faults_training.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.helpers import write_lock
from videotag.errors import ModelError, RunStopped
from videotag.training import lock as lock_lib
from videotag.training.stop import StopSignals, _StopNow


def test_locks_of_runs_that_are_gone_are_taken_over(tmp_path):
    warnings = []
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    cases = {
        "same_host_dead": (dict(pid=dead_pid),
                           f"there is no process {dead_pid} on this host any more"),
        "other_host_old": (dict(host="elsewhere", pid=os.getpid(),
                                heartbeat=time.time() - 7300),
                           "its heartbeat is 2 h 1 min old, more than "
                           "train.lock_stale_seconds=600 s"),
        "restarted": (dict(pid=os.getpid(), boot_id="another-boot"),
                      "the machine has restarted since"),
    }
    for name, (fields, reason) in cases.items():
        write_lock(tmp_path / name, **fields)
        with lock_lib.RunLock(str(tmp_path / name), warn=warnings.append) as held:
            assert held.read().token == held.holder.token
            assert f"taking over {tmp_path / name / 'train.lock'}" in warnings[-1]
            assert warnings[-1].endswith(reason), warnings[-1]
        assert not (tmp_path / name / "train.lock").exists()  # released


def test_a_live_lock_is_refused_and_a_lost_lock_stops_writing(tmp_path):
    # another host, heartbeat 30 s ago: running
    write_lock(tmp_path / "live", host="elsewhere", pid=4321, heartbeat=time.time() - 30)
    with pytest.raises(ModelError, match=r"in use by another training run \(host elsewhere, "
                                         r"pid 4321, .* last heartbeat 30 s ago"):
        lock_lib.RunLock(str(tmp_path / "live")).acquire()
    assert json.loads((tmp_path / "live" / "train.lock").read_text())["token"] == "theirs"
    # this host, a live process (this one's parent)
    write_lock(tmp_path / "parent", pid=os.getppid(),
                pid_start=lock_lib._process_start(os.getppid()))
    with pytest.raises(ModelError, match=f"pid {os.getppid()}"):
        lock_lib.RunLock(str(tmp_path / "parent")).acquire()
    # a run whose lock is overwritten by another stops before its next write
    held = lock_lib.RunLock(str(tmp_path / "taken"), stale_seconds=2).acquire()
    write_lock(tmp_path / "taken", host="elsewhere", pid=99)
    time.sleep(0.6)  # the heartbeat (every 0.2 s here) notices
    assert held.lost is not None
    with pytest.raises(ModelError, match=r"no longer holds .*\(host elsewhere, pid 99,"):
        held.check()
    held.release()
    assert (tmp_path / "taken" / "train.lock").exists()  # not ours: left alone


def test_lock_on_a_file_system_without_atomic_create(tmp_path):
    first = lock_lib.RunLock("ram://locks/run").acquire()
    with pytest.raises(ModelError, match="in use by another training run"):
        lock_lib.RunLock("ram://locks/run").acquire()
    first.release()
    assert not tf.io.gfile.exists("ram://locks/run/train.lock")


def test_signals_in_process_a_second_one_stops_at_once_and_handlers_are_put_back():
    """Real signals to this process: the first is noted (and interrupts a block that
    only reads), a second ends the run at once; the previous handlers come back."""
    previous = signal.getsignal(signal.SIGTERM)
    with StopSignals(timeout_seconds=60) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs in the main thread, between bytecodes
        assert stop.requested == signal.SIGTERM
        with pytest.raises(_StopNow):
            with stop.interruptible():
                pass  # a signal already came: the block does not start
        with pytest.raises(RunStopped, match="^stopped by a second SIGINT, at once and "
                                             "without saving; the latest checkpoint is "
                                             "intact$") as stopped:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert stopped.value.exit_status == 128 + signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) is previous
    stop._timer.join(5)
    assert not stop._timer.is_alive()  # cancelled: no exit pending
