"""Stopping a training run on SIGTERM or SIGINT (preemption, Ctrl-C), with a
checkpoint of the step it stopped at.

On the first signal the handler only takes note; the epoch loop sees it at the end
of the step in progress, saves a checkpoint of that step and raises `RunStopped`
(exit status 128 + the signal's number). During validation, which only reads, the
handler stops it at once (`interruptible`) and the loop saves the position at the
end of the epoch's steps; the resumed run scores that epoch again.

The time from the signal to the exit is the rest of the current step plus one
checkpoint write, and never more than `timeout_seconds` (`train.stop_timeout_seconds`,
25 s by default: cloud schedulers wait 30 s after SIGTERM): past it, a timer ends the
process with the same status without the new checkpoint, the previous one being
intact (checkpoint writes are atomic). A second signal stops at once, without saving.

Once the training steps are over and their last checkpoint saved (`finishing`), a
signal only bounds the time left for the final files (`model.keras`,
`metrics.json`): the run ends normally when they are written in time; past the
bound, the process ends saying that the checkpoint holds the trained step and the
same command writes them.

Handlers are installed only in the main thread (the only place Python runs them),
and the previous handlers are put back on the way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Optional

from videotag.errors import RunStopped

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _StopNow(Exception):
    """Raised by the handler inside an `interruptible` block."""


class StopSignals:
    """SIGTERM/SIGINT handling for one run (a context manager).

    Attributes:
        requested: the number of the signal received, or None.
    """

    def __init__(self, timeout_seconds: float = 25.0, verbose: bool = True):
        self.timeout_seconds = timeout_seconds
        self.verbose = verbose
        self.requested: Optional[int] = None
        self.received_at = 0.0
        self._interruptible = False
        self._previous = {}
        self._timer: Optional[threading.Timer] = None
        self.checkpoint: Optional[str] = None  # set by `finishing`

    @staticmethod
    def name(signum: int) -> str:
        return signal.Signals(signum).name

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None:
            raise RunStopped(f"stopped by a second {self.name(signum)}, at once and without "
                             "saving; the latest checkpoint is intact", signum)
        self.requested = signum
        self.received_at = time.monotonic()
        if self.checkpoint is None:
            doing = "stopping after a checkpoint of the current step"
        else:
            doing = (f"the training is over and saved in {self.checkpoint}; finishing the "
                     "final model file")
        print(f"{self.name(signum)} received: {doing} (at most {self.timeout_seconds:g} s)",
              file=sys.stderr, flush=True)
        self._timer = threading.Timer(self.timeout_seconds, self._expire, (signum,))
        self._timer.daemon = True
        self._timer.start()
        if self._interruptible:
            raise _StopNow()

    def _expire(self, signum: int) -> None:
        within = (f"within {self.timeout_seconds:g} s of {self.name(signum)} "
                  "(train.stop_timeout_seconds)")
        if self.checkpoint is None:
            message = (f"no checkpoint {within}: stopped without it; the previous checkpoint "
                       "is intact")
        else:
            message = (f"the final model file was not written {within}: stopped without it; "
                       f"the training is saved in {self.checkpoint}: run the same command to "
                       "write it")
        print(f"error: {message}", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    def finishing(self, checkpoint: Optional[str]) -> None:
        """Notes that the training steps are over and saved in `checkpoint`: a signal
        from now on only bounds the time the final files take (see the module doc)."""
        self.checkpoint = checkpoint

    @contextlib.contextmanager
    def interruptible(self):
        """Inside, a signal stops the work at once: the block raises `_StopNow`
        (also when a signal came before it started)."""
        if self.requested is not None:
            raise _StopNow()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def stopped(self, message: str) -> RunStopped:
        """The exception ending a run stopped by the signal received; `message`
        follows `stopped by SIGTERM <seconds> s after it came, `. A worker of a
        cluster stopped because another worker received a signal stops as for
        SIGTERM."""
        if self._timer is not None:
            self._timer.cancel()
        if self.requested is None:
            return RunStopped(f"stopped with the other workers (one received a signal), "
                              f"{message}", signal.SIGTERM)
        seconds = time.monotonic() - self.received_at
        return RunStopped(f"stopped by {self.name(self.requested)} {seconds:.1f} s after it "
                          f"came, {message}", self.requested)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        if self._timer is not None:
            self._timer.cancel()
