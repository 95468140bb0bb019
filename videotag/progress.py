"""Progress of long jobs (training, evaluation, extraction, prediction, embeddings,
similar videos): one mechanism for all of them.

A `Progress` counts items (videos, steps) and shows the count, the rate and, when
the total is known, a filled bar and the time left, in one of three ways:

- `"bar"`: one line redrawn in place (at most every `redraw` seconds, and at the
  end); the default when the stream is a terminal;
- `"lines"`: a line every `every` seconds; the default otherwise (log files, nohup,
  pipes), so that logs stay readable;
- `"silent"`: nothing (also when `every <= 0`: the CLIs' `--progress_seconds=0`).

What a line says is a `str.format` template over the fields listed in `Progress`;
each job keeps its own wording (`  predicted 513 videos (20/s)`, `epoch 3 step 120,
loss 0.5012, 1234 examples/s`, `extracting [####....] 12/30 videos, ...`).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Callable, Dict, Optional

MODES = ("auto", "bar", "lines", "silent")
DEFAULT_TEMPLATE = "  {label} {count} {unit} ({rate:.0f}/s)"
DEFAULT_TEMPLATE_WITH_TOTAL = "  {label} {bar} {count}/{total} {unit} ({rate:.0f}/s, {eta:.0f} s left)"
BAR_WIDTH = 24


class Progress:
    """Counts items and shows how far a job is, on `stream`.

    The clock starts at `start()` or, without it, at the first `add` / `update`
    (so that, e.g., loading a model is not in the rate).

    Template fields: `label`, `unit`, `count` (items so far, `done` included),
    `total` (None when unknown), `rate` (items per second since the clock started,
    not counting `done`, times `scale`), `eta` (seconds left, 0 when unknown),
    `bar` (`[####....]`, the share of `total` done; empty without a total),
    `elapsed` (seconds), the keyword arguments given to the constructor, and the
    values given to the last `add` / `update` (over the constructor's).

    Args:
        label: what the job does, e.g. "predicted".
        unit: what is counted, e.g. "videos".
        total: how many items the job has (None: unknown).
        every: seconds between lines in "lines" mode; <= 0: silent in every mode.
        mode: "auto" (a bar on a terminal, lines otherwise), "bar", "lines" or
            "silent".
        stream: where the progress goes (default: standard error).
        clock: seconds as a float (default: time.monotonic).
        template: the text of a line (default: `DEFAULT_TEMPLATE`, or
            `DEFAULT_TEMPLATE_WITH_TOTAL` when `total` is given).
        done: items done before this job began (e.g. the steps of a resumed epoch):
            counted, but not in the rate.
        scale: factor from items to the rate's unit (e.g. examples per step).
        redraw: least seconds between two redraws of the bar.
        **fields: constant template fields (e.g. `epoch=3`).

    Raises:
        ValueError: an unknown `mode`.
    """

    def __init__(self, label: str = "", *, unit: str = "videos", total: Optional[int] = None,
                 every: float = 10.0, mode: str = "auto", stream: Optional[IO[str]] = None,
                 clock: Callable[[], float] = time.monotonic, template: Optional[str] = None,
                 done: int = 0, scale: float = 1.0, redraw: float = 0.1, **fields: Any):
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.stream = stream or sys.stderr
        if every <= 0:
            mode = "silent"
        elif mode == "auto":
            mode = "bar" if _is_terminal(self.stream) else "lines"
        self.mode = mode
        self.label, self.unit, self.total = label, unit, total
        self.every, self.redraw, self.scale = every, redraw, scale
        self.clock = clock
        if template is None:
            template = DEFAULT_TEMPLATE if total is None else DEFAULT_TEMPLATE_WITH_TOTAL
        self.template = template
        self.fields: Dict[str, Any] = dict(fields)
        self.values: Dict[str, Any] = {}
        self.count = self.done = int(done)
        self.start_time: Optional[float] = None
        self._last: Optional[float] = None  # time of the last line or redraw
        self._drawn = False  # a bar is on the current line
        self._updated = False  # update() has run

    def start(self) -> None:
        """Starts the clock now (if it has not started)."""
        if self.start_time is None:
            self.start_time = self._last = self.clock()

    def add(self, n: int = 1, **values: Any) -> None:
        """Counts `n` more items; `values` are template fields (e.g. `loss=0.5`)."""
        self.update(self.count + n, **values)

    def update(self, count: int, **values: Any) -> None:
        """Sets the count to `count` (with `values`) and shows it when it is due."""
        now = self.clock()
        if self.start_time is None:
            self.start_time = self._last = now
        self.count = int(count)
        self.values = values
        self._updated = True
        if self.mode == "lines":
            if now - self._last >= self.every:
                self._last = now
                self.stream.write(self.text(now) + "\n")
                self.stream.flush()
        elif self.mode == "bar":
            finished = self.total is not None and self.count >= self.total
            if not self._drawn or finished or now - self._last >= self.redraw:
                self._last = now
                self._draw(now)

    def rate(self, now: Optional[float] = None) -> float:
        """Items per second since the clock started (not counting `done`), times
        `scale`; 0.0 before the clock starts."""
        if self.start_time is None:
            return 0.0
        elapsed = (self.clock() if now is None else now) - self.start_time
        return (self.count - self.done) * self.scale / elapsed if elapsed > 0 else 0.0

    def eta(self, now: Optional[float] = None) -> float:
        """Seconds left at the current rate; 0.0 without a total or a rate."""
        rate = self.rate(now) / self.scale if self.scale else 0.0
        if self.total is None or rate <= 0:
            return 0.0
        return max(self.total - self.count, 0) / rate

    def text(self, now: Optional[float] = None) -> str:
        """The template filled with the current figures."""
        now = self.clock() if now is None else now
        figures = dict(
            label=self.label, unit=self.unit, count=self.count, total=self.total,
            rate=self.rate(now), eta=self.eta(now), bar=self._bar(),
            elapsed=now - self.start_time if self.start_time is not None else 0.0)
        figures.update(self.fields)
        figures.update(self.values)
        return self.template.format(**figures)

    def message(self, text: str) -> None:
        """Writes `text` as a line of its own (in every mode), without breaking the bar:
        the bar is drawn again below it at the next update."""
        self.stream.write(("\r\033[K" if self._drawn else "") + text + "\n")
        self.stream.flush()
        self._drawn = False

    def close(self) -> None:
        """Ends the bar: draws the final figures and a line break (bar mode only)."""
        if self.mode == "bar" and self._updated:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _draw(self, now: float) -> None:
        self.stream.write("\r\033[K" + self.text(now))
        self.stream.flush()
        self._drawn = True

    def _bar(self) -> str:
        if self.total is None:
            return ""
        filled = min(BAR_WIDTH * self.count // self.total, BAR_WIDTH) if self.total else BAR_WIDTH
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}]"


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
