"""What a training run shows: the progress of its epochs, and TensorBoard logs.

TensorBoard logs go to `<model_dir>/logs/train` (per `train.log_every_steps` steps:
`loss`, `clean_loss`, `adversarial_loss` with FGM, `learning_rate`,
`examples_per_second`, `grad_norm`, and for a model trained with online distillation
`tags_loss`, `members_loss`, `distillation_loss`; per epoch: `epoch_loss` ...) and
`<model_dir>/logs/validation` (per epoch: `gap`, `map`, `hit_at_1`, `perr`, ...).
View them with `tensorboard --logdir <model_dir>/logs` (the `tensorboard` package,
installed by the `tensorboard` extra; the logs are written with TensorFlow alone, which
no longer depends on it).
"""

from __future__ import annotations

import sys
import time
import posixpath
from typing import IO, Callable, Dict, Optional, Sequence

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from videotag.progress import Progress

LOG_DIR = "logs"
# what TensorBoard's scalar dashboard looks for in a summary
_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

LINE_TEMPLATE = "epoch {epoch} step {count}, loss {loss:.4f}, {rate:.0f} examples/s"
BAR_TEMPLATE = ("epoch {epoch}/{epochs} {bar} step {count}/{total}, loss {loss:.4f}, "
                "{rate:.0f} examples/s, {eta:.0f} s left")
FGM_VALUES = ", clean {clean:.4f}, adversarial {adversarial:.4f}"


class EpochProgress:
    """The progress of a training run's epochs (`videotag.progress.Progress`): a bar
    on a terminal, else a line every `seconds`; nothing when not `verbose`.

    A line reads `epoch 3 step 120, loss 0.5012, 1234 examples/s`; when the epoch's
    steps are known (`train.steps_per_epoch`, or the previous epoch's count), the
    step count, its fill and the time left are shown with the total. With FGM the
    clean and adversarial losses follow the loss, then the named `terms` (the
    distillation terms of a mixture: `tags 0.0812, members 0.2490, distillation
    0.0031`).

    Args:
        verbose: show anything at all.
        batch_size: the global batch (for examples/s).
        epochs: the run's epochs.
        fgm: the steps report `clean` and `adversarial` losses too.
        terms: names of further loss terms the steps report.
        seconds: seconds between lines (when no bar is drawn).
        mode, stream, clock: as for `videotag.progress.Progress`.
    """

    def __init__(self, verbose: bool, batch_size: int, epochs: int, fgm: bool = False,
                 seconds: float = 30.0, mode: str = "auto", stream: Optional[IO[str]] = None,
                 clock: Callable[[], float] = time.monotonic, terms: Sequence[str] = ()):
        self.verbose, self.batch_size, self.epochs, self.fgm = verbose, batch_size, epochs, fgm
        self.terms = list(terms)
        self.seconds, self.mode, self.stream, self.clock = seconds, mode, stream, clock
        self.current: Optional[Progress] = None

    def epoch_begin(self, epoch: int, steps: Optional[int], done: int = 0) -> None:
        """Epoch `epoch` (from 0) of `steps` steps (None: unknown), `done` already
        taken (by the run that was resumed: not in the rate)."""
        template = LINE_TEMPLATE if steps is None else BAR_TEMPLATE
        values = FGM_VALUES if self.fgm else ""
        values += "".join(f", {t} {{{t}:.4f}}" for t in self.terms)
        template = template.replace("{loss:.4f}", "{loss:.4f}" + values)
        self.current = Progress(
            "epoch", unit="steps", total=steps, every=self.seconds,
            mode=self.mode if self.verbose else "silent", stream=self.stream,
            clock=self.clock, template=template, done=done, scale=self.batch_size,
            epoch=epoch + 1, epochs=self.epochs)
        self.current.start()

    def step(self, step_in_epoch: int, values: Dict[str, float]) -> None:
        """After the epoch's step `step_in_epoch` (from 1), with its `values`
        (`loss`, with FGM `clean` and `adversarial`, and each of `terms`)."""
        self.current.update(step_in_epoch, **values)

    def message(self, text: str) -> None:
        """Writes `text` as a line of its own, below the bar when one is drawn."""
        if self.current is not None:
            self.current.message(text)
        elif self.verbose:
            print(text, file=self.stream or sys.stderr, flush=True)

    def epoch_end(self) -> None:
        """Ends the epoch's bar."""
        if self.current is not None:
            self.current.close()
            self.current = None


class TensorBoardLogs:
    """Scalar summaries under `<model_dir>/logs/{train,validation}`; a no-op when
    `enabled` is false (TensorBoard off, or a worker other than the chief)."""

    def __init__(self, model_dir: str, enabled: bool):
        self.enabled = enabled
        self._writers: Dict[str, tf.summary.SummaryWriter] = {}
        self.root = posixpath.join(str(model_dir), LOG_DIR)  # keeps a scheme:// prefix

    def scalars(self, split: str, values: Dict[str, float], step: int) -> None:
        """Writes `values` (name -> number) at `step` to the `split` log."""
        if not self.enabled:
            return
        writer = self._writers.get(split)
        if writer is None:
            writer = self._writers[split] = tf.summary.create_file_writer(
                posixpath.join(self.root, split))
        with writer.as_default():
            for name, value in values.items():
                tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                                 metadata=_SCALAR)

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
