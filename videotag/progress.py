"""Progress lines of long jobs (prediction, embeddings, similar videos)."""

from __future__ import annotations

import sys
import time
from typing import IO, Callable, Optional


class Progress:
    """Prints `  <verb> <count> videos (<rate>/s)` to stderr every `every` seconds,
    counted from the first videos (model loading is not in the rate).

    Args:
        verb: what is counted, e.g. "predicted".
        every: seconds between lines; 0 or less: silent.
        stream: where lines go (default: standard error).
        clock: seconds as a float (default: time.monotonic).
    """

    def __init__(self, verb: str, every: float = 10.0, stream: Optional[IO[str]] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.verb = verb
        self.clock = clock
        self.every = every
        self.stream = stream or sys.stderr
        self.count = 0
        self.start = self._last = None  # the clock starts with the first videos

    def add(self, n: int = 1) -> None:
        """Counts `n` more videos and prints a line when one is due."""
        now = self.clock()
        if self.start is None:
            self.start = self._last = now
        self.count += n
        if self.every > 0:
            if now - self._last >= self.every:
                self._last = now
                print(f"  {self.verb} {self.count} videos ({self.rate(now):.0f}/s)",
                      file=self.stream, flush=True)

    def rate(self, now: Optional[float] = None) -> float:
        """Videos per second so far (until `now`, default the clock's time)."""
        if self.start is None:
            return 0.0
        now = self.clock() if now is None else now
        return self.count / max(now - self.start, 1e-9)
