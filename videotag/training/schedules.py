"""Learning-rate schedules of the trainer: exponential decay, cosine, linear warm-up."""

from __future__ import annotations

import math

import keras
from keras import ops

from videotag.config import Config


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


def learning_rate_schedule(cfg: Config, steps_per_epoch: int = 0):
    """Adam's learning rate as a function of the optimizer step.

    Lengths are given in examples and turned into steps of the global batch:
    "exponential" multiplies the rate by `lr_decay` every `lr_decay_examples`
    (staircase; a constant when that is 0); "cosine" decays from the peak to
    `lr_final_ratio` x peak over `cosine_decay_examples` (or the whole run:
    epochs x `steps_per_epoch`). `lr_warmup_examples` adds a linear warm-up.

    Returns:
        A float (constant rate) or a Keras `LearningRateSchedule`.
    """
    t = cfg.train
    to_steps = lambda examples: max(1, math.ceil(examples / t.batch_size))  # noqa: E731
    if t.lr_schedule == "cosine":
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
        return WarmupSchedule(schedule, to_steps(t.lr_warmup_examples), t.learning_rate)
    return schedule
