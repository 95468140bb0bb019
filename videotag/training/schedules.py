"""Learning-rate schedules of the trainer: exponential decay, cosine, piecewise
constant by epoch, linear warm-up."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import keras
import tensorflow as tf
from keras import ops

from videotag.config import Config


@keras.saving.register_keras_serializable(package="videotag")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then `schedule` (a schedule or
    a constant rate), counted from the end of the warm-up."""

    def __init__(self, schedule, warmup_steps: int, peak: float):
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.peak = peak

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / float(self.warmup_steps)
        if callable(self.schedule):
            after = ops.cast(self.schedule(ops.maximum(step - self.warmup_steps, 0.0)), "float32")
        else:
            after = ops.cast(self.schedule, "float32")
        return ops.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        schedule = self.schedule
        if callable(schedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps, "peak": self.peak}


@keras.saving.register_keras_serializable(package="videotag")
class EpochPiecewiseSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`values[i]` during the epochs from `boundaries[i-1]` (inclusive) to
    `boundaries[i]` (exclusive), epochs counted from 0: PaddlePaddle's
    `PiecewiseDecay` stepped once per epoch, as PaddleVideo's trainer steps it.

    The epoch is a variable, `epoch`, that the trainer sets at the start of each
    epoch (`set_epoch`); the optimizer step passed in is not used, so the rate does
    not depend on the number of steps of an epoch (unknown before the first epoch
    when an epoch is one pass over the data).
    """

    def __init__(self, boundaries: Sequence[int], values: Sequence[float],
                 epoch: Optional[tf.Variable] = None):
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]
        self.epoch = epoch if epoch is not None else tf.Variable(
            0, dtype=tf.int64, trainable=False, name="schedule_epoch")

    def __call__(self, step):
        del step
        passed = tf.convert_to_tensor(self.epoch) >= tf.constant(self.boundaries, tf.int64)
        index = tf.reduce_sum(tf.cast(passed, tf.int32))
        return tf.gather(tf.constant(self.values, tf.float32), index)

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


def set_epoch(schedule, epoch: int) -> None:
    """Tells an epoch-driven schedule (`EpochPiecewiseSchedule`, also inside a
    `WarmupSchedule`) the epoch about to start; other schedules ignore it."""
    inner = schedule.schedule if isinstance(schedule, WarmupSchedule) else schedule
    if isinstance(inner, EpochPiecewiseSchedule):
        inner.epoch.assign(epoch)


def learning_rate_schedule(cfg: Config, steps_per_epoch: int = 0):
    """The learning rate as a function of the optimizer step.

    Lengths are given in examples and turned into steps of the global batch:
    "exponential" multiplies the rate by `lr_decay` every `lr_decay_examples`
    (staircase; a constant when that is 0); "cosine" decays from the peak to
    `lr_final_ratio` x peak over `cosine_decay_examples` (or the whole run:
    epochs x `steps_per_epoch`); "piecewise" takes `lr_values` by epoch
    (`EpochPiecewiseSchedule`: the trainer calls `set_epoch`).
    `lr_warmup_examples` adds a linear warm-up (to `lr_values[0]` for "piecewise").

    Returns:
        A float (constant rate) or a Keras `LearningRateSchedule`.
    """
    t = cfg.train
    to_steps = lambda examples: max(1, math.ceil(examples / t.batch_size))  # noqa: E731
    peak = t.learning_rate
    if t.lr_schedule == "piecewise":
        schedule = EpochPiecewiseSchedule(t.lr_boundaries, t.lr_values)
        peak = t.lr_values[0]
    elif t.lr_schedule == "cosine":
        examples = t.cosine_decay_examples
        run_steps = t.epochs * (steps_per_epoch or t.steps_per_epoch)
        steps = to_steps(examples) if examples else max(1, run_steps)
        schedule = keras.optimizers.schedules.CosineDecay(
            t.learning_rate, decay_steps=steps, alpha=t.lr_final_ratio)
    elif t.lr_decay_examples and t.lr_decay != 1.0:
        schedule = keras.optimizers.schedules.ExponentialDecay(
            t.learning_rate, decay_steps=to_steps(t.lr_decay_examples),
            decay_rate=t.lr_decay, staircase=True)
    else:
        schedule = t.learning_rate
    if t.lr_warmup_examples:
        return WarmupSchedule(schedule, to_steps(t.lr_warmup_examples), peak)
    return schedule
