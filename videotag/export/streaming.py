"""Streaming jobs (prediction, embeddings, similar videos): progress lines and output
files that appear only when complete."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import IO, Callable, Iterator, Optional


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


@contextlib.contextmanager
def open_output(path: Optional[str]) -> Iterator[IO[str]]:
    """A text file to write `path` through (standard output when None).

    The file is written under `<path>.tmp` and renamed when the block ends without
    an error; otherwise the temporary file is removed: a failed run never leaves a
    partial file.
    """
    if not path:
        yield sys.stdout
        return
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
