"""What a training run shows: progress bar or lines, and TensorBoard logs.

TensorBoard logs go to `<model_dir>/logs/train` (per `train.log_every_steps` steps:
`loss`, `clean_loss`, `adversarial_loss` with FGM, `learning_rate`,
`examples_per_second`, `grad_norm`; per epoch: `epoch_loss` ...) and
`<model_dir>/logs/validation` (per epoch: `gap`, `map`, `hit_at_1`, `perr`, ...).
View them with `tensorboard --logdir <model_dir>/logs` (the `tensorboard` package,
installed by the `tensorboard` extra; the logs are written with TensorFlow alone, which
no longer depends on it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, Optional

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

LOG_DIR = "logs"
# what TensorBoard's scalar dashboard looks for in a summary
_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


class _ProgressLog:
    """A progress line every `seconds` when no progress bar is drawn (logs, nohup)."""

    def __init__(self, batch_size: int, seconds: float = 30.0):
        self.batch_size = batch_size
        self.seconds = seconds

    def on_epoch_begin(self, epoch, logs=None, done=0):
        """`done`: steps of the epoch already taken (by the run that was resumed)."""
        self.epoch, self.steps, self.done = epoch + 1, done, done
        self.start = self.last = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        now = time.time()
        if now - self.last >= self.seconds:
            self.last = now
            rate = (self.steps - self.done) * self.batch_size / (now - self.start)
            loss = (logs or {}).get("loss")
            loss_text = f", loss {float(loss):.4f}" if loss is not None else ""
            print(f"epoch {self.epoch} step {self.steps}{loss_text}, {rate:.0f} examples/s",
                  file=sys.stderr, flush=True)


class Progress:
    """A Keras progress bar on a terminal, else a line every 30 s; nothing when quiet.

    Args:
        verbose: show anything at all.
        batch_size: the global batch (for examples/s).
        epochs: the run's epochs (for the bar's title).
    """

    def __init__(self, verbose: bool, batch_size: int, epochs: int):
        self.verbose = verbose
        self.tty = sys.stdout.isatty()
        self.epochs = epochs
        self.lines = _ProgressLog(batch_size)
        self.bar: Optional[keras.utils.Progbar] = None

    def epoch_begin(self, epoch: int, steps: Optional[int], done: int = 0) -> None:
        """Epoch `epoch` (from 0) of `steps` steps (None: unknown), `done` already."""
        if not self.verbose:
            return
        if self.tty:
            print(f"Epoch {epoch + 1}/{self.epochs}")
            self.bar = keras.utils.Progbar(steps, stateful_metrics=["examples/s"])
            if done:
                self.bar.update(done)
        else:
            self.lines.on_epoch_begin(epoch, done=done)

    def step(self, step_in_epoch: int, values: Dict[str, float]) -> None:
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.update(step_in_epoch, values=list(values.items()))
        else:
            self.lines.on_train_batch_end(step_in_epoch, values)

    def epoch_end(self, step_in_epoch: int) -> None:
        if self.bar is not None:
            self.bar.update(step_in_epoch, finalize=True)
            self.bar = None


class TensorBoardLogs:
    """Scalar summaries under `<model_dir>/logs/{train,validation}`; a no-op when
    `enabled` is false (TensorBoard off, or a worker other than the chief)."""

    def __init__(self, model_dir: Path, enabled: bool):
        self.enabled = enabled
        self._writers: Dict[str, tf.summary.SummaryWriter] = {}
        self.root = Path(model_dir) / LOG_DIR

    def scalars(self, split: str, values: Dict[str, float], step: int) -> None:
        """Writes `values` (name -> number) at `step` to the `split` log."""
        if not self.enabled:
            return
        writer = self._writers.get(split)
        if writer is None:
            writer = self._writers[split] = tf.summary.create_file_writer(str(self.root / split))
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
