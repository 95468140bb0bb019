"""Running a batch pipeline: build, run to the end, count, commit, summarise.

`run_pipeline` is what every batch command does after it has built its transforms:
it runs the pipeline with the user's options and waits for it; on failure it
deletes the staging folder (the previous output stays) and raises the project
error a worker raised (`failures.recover`), so the command prints `error: ...`;
on success it reads the `videotag/*` counters, writes the summary and the dead
letters' count beside the outputs, and commits the staging folder.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Sequence

from videotag.beam.failures import NAMESPACE, recover
from videotag.beam.staging import StagedOutput
from videotag.errors import VideotagError

_SHOWN_FAILURES = 20


@dataclass
class BatchSummary:
    """What a batch pipeline did (written as JSON beside its outputs).

    Attributes:
        command: the command (`batch-extract`, ...).
        runner: how it ran ("DirectRunner, 2 workers (multi_processing)").
        counts: the pipeline's `videotag/*` counters, summed over steps.
        failed: the dead letters ({"path", "reason", ...}).
        outputs: the committed files.
        seconds: wall time, pipeline start-up included.
    """

    command: str
    runner: str
    counts: Dict[str, int] = field(default_factory=dict)
    failed: List[dict] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    seconds: float = 0.0

    def rate(self, counter: str) -> float:
        """`counter` per second of the run."""
        return self.counts.get(counter, 0) / self.seconds if self.seconds else 0.0


def counters(result) -> Dict[str, int]:
    """The `videotag/*` counters of a finished pipeline, summed over its steps
    (committed values where the runner has them, else attempted ones)."""
    from apache_beam.metrics.metric import MetricsFilter

    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    totals: Dict[str, int] = {}
    for item in found:
        value = item.committed if item.committed is not None else item.attempted
        totals[item.key.metric.name] = totals.get(item.key.metric.name, 0) + int(value or 0)
    return totals


def read_lines(pattern: str) -> List[str]:
    """The lines of every file matching `pattern` (dead letters: few and small)."""
    import tensorflow as tf

    lines: List[str] = []
    for path in sorted(tf.io.gfile.glob(pattern)):
        with tf.io.gfile.GFile(path, "r") as f:
            lines.extend(line for line in f.read().splitlines() if line)
    return lines


def run_pipeline(build: Callable, options, staged: StagedOutput, summary: BatchSummary,
                 dead_letters: str, summary_file: str, previous: Sequence[str] = (),
                 inputs: Sequence[str] = ()) -> BatchSummary:
    """Runs a pipeline and commits its outputs.

    Args:
        build: `build(pipeline)` adds the transforms (writing into `staged`).
        options: Beam's `PipelineOptions`.
        staged: where the transforms write; committed on success.
        summary: filled in and returned.
        dead_letters: the staged glob of the dead-letter files.
        summary_file: the staged path of the summary JSON.
        previous: for a prefix output, the globs of a previous run's files
            (`StagedOutput.commit`).
        inputs: staged files the pipeline reads (not outputs): deleted before the
            commit.

    Raises:
        VideotagError: the error a worker raised (bad record, corrupt shard), or
            the pipeline did not finish.
    """
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.runners.runner import PipelineState

    start = time.time()
    try:
        pipeline = beam.Pipeline(options=options)
        build(pipeline)
        result = pipeline.run()
        state = result.wait_until_finish()
        if state not in (None, PipelineState.DONE):
            raise VideotagError(f"the pipeline ended in state {state}")
        summary.counts.update(counters(result))
        summary.failed = [json.loads(line) for line in read_lines(dead_letters)]
        summary.seconds = time.time() - start
        for path in inputs:
            tf.io.gfile.remove(path)
        summary.outputs = [staged.final(f) for f in staged.files()] + [staged.final(summary_file)]
        with tf.io.gfile.GFile(summary_file, "w") as f:
            f.write(json.dumps(asdict(summary), indent=1, ensure_ascii=False) + "\n")
    except BaseException as exc:
        staged.abort()
        error = recover(exc)
        if error is not None:
            raise error from None
        raise
    staged.commit(list(previous))
    return summary


def report_failures(summary: BatchSummary, what: str, where: str) -> int:
    """Prints the dead letters (the first few) and returns the exit status: 1 when
    any `what` failed."""
    if not summary.failed:
        return 0
    for entry in summary.failed[:_SHOWN_FAILURES]:
        print(f"error: {entry['reason']}", file=sys.stderr)
    more = len(summary.failed) - _SHOWN_FAILURES
    if more > 0:
        print(f"... and {more} more", file=sys.stderr)
    print(f"error: {len(summary.failed)} {what} failed (dead letters in {where})",
          file=sys.stderr)
    return 1
