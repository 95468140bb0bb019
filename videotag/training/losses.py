"""Losses and learning-rate schedules of the trainer.

The task losses are per example (a vector over the batch), so that the trainer can
sum them over a replica's examples and divide by the size of the *global* batch:
summed over replicas, the gradients are then those of the global batch's mean loss,
whatever the number of replicas.
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import keras
import tensorflow as tf
from keras import ops

from videotag.config import Config


def task_losses(outputs: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor],
                tasks: Sequence[str]) -> Dict[str, tf.Tensor]:
    """Per-example losses by output name, float32 [B].

    `tags`: binary cross-entropy averaged over the classes (multi-hot targets);
    `category`: cross-entropy of the softmax (integer targets).
    """
    losses = {}
    if "tags" in tasks:
        losses["tags"] = keras.losses.binary_crossentropy(
            targets["tags"], ops.cast(outputs["tags"], "float32"))
    if "category" in tasks:
        losses["category"] = keras.losses.sparse_categorical_crossentropy(
            targets["category"], ops.cast(outputs["category"], "float32"))
    return losses


def weighted_loss(cfg: Config, outputs, targets) -> tf.Tensor:
    """The multi-task loss per example, float32 [B]: the task losses weighted by
    `model.head.tags_weight` and `category_weight`."""
    head = cfg.model.head
    weights = {"tags": head.tags_weight, "category": head.category_weight}
    losses = task_losses(outputs, targets, head.tasks)
    return tf.add_n([weights[name] * loss for name, loss in losses.items()])


def decayed_variables(model: keras.Model):
    """The variables `train.weight_decay` applies to: trainable, of rank >= 2."""
    return [v for v in model.trainable_variables if len(v.shape) >= 2]


def weight_decay_loss(variables, weight_decay: float) -> tf.Tensor:
    """`weight_decay * sum(w ** 2)` over `variables` (float32 scalar)."""
    if not weight_decay or not variables:
        return tf.constant(0.0)
    return weight_decay * tf.add_n(
        [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in variables])


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
