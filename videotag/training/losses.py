"""Losses of the trainer.

The task losses are per example (a vector over the batch), so that the trainer can
sum them over a replica's examples and divide by the size of the *global* batch:
summed over replicas, the gradients are then those of the global batch's mean loss,
whatever the number of replicas.
"""

from __future__ import annotations

from typing import Dict, Sequence

import keras
import tensorflow as tf
from keras import ops

from videotag.config import Config


def task_losses(outputs: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor],
                tasks: Sequence[str]) -> Dict[str, tf.Tensor]:
    """Per-example losses by output name, float32 [B].

    `tags`: binary cross-entropy averaged over the classes (multi-hot targets);
    with `tag_weights` (rated segments: 1 where a class is rated) the
    cross-entropy summed over the rated classes alone, as the YT8M starter code's
    `CrossEntropyLoss` with `label_weights` (unrated pairs are neither positive
    nor negative); `category`: cross-entropy of the softmax (integer targets).
    """
    losses = {}
    if "tags" in tasks and "tag_weights" in targets:
        per_class = ops.binary_crossentropy(targets["tags"], ops.cast(outputs["tags"], "float32"))
        losses["tags"] = ops.sum(per_class * targets["tag_weights"], axis=-1)
    elif "tags" in tasks:
        losses["tags"] = keras.losses.binary_crossentropy(
            targets["tags"], ops.cast(outputs["tags"], "float32"))
    if "category" in tasks:
        losses["category"] = keras.losses.sparse_categorical_crossentropy(
            targets["category"], ops.cast(outputs["category"], "float32"))
    return losses


def weighted_loss(cfg: Config, outputs, targets) -> tf.Tensor:
    """The multi-task loss per example, float32 [B]: the task losses weighted by
    `model.head.tags_weight` and `category_weight` (the `tags` cross-entropy summed
    over the classes with `model.head.tags_loss: sum`)."""
    head = cfg.model.head
    weights = {"tags": head.tags_weight, "category": head.category_weight}
    if head.tags_loss == "sum":  # binary cross-entropy summed over the classes
        weights["tags"] *= cfg.data.num_classes
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
