"""Losses of the trainer: the task losses, the online distillation terms of a
mixture (MIX_NEXTVLAD) and weight decay.

The task losses are per example (a vector over the batch), so that the trainer can
sum them over a replica's examples and divide by the size of the *global* batch:
summed over replicas, the gradients are then those of the global batch's mean loss,
whatever the number of replicas.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import keras
import tensorflow as tf
from keras import ops

from videotag.config import Config
from videotag.models.interface import MEMBER_LOGITS, MIXTURE_LOGITS

# The epsilon of the logarithms in the authors' distillation term.
KL_EPSILON = 1e-8


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


def distillation_kl(member_logits: tf.Tensor, mixture_logits: tf.Tensor,
                    temperature: float) -> tf.Tensor:
    """The online distillation divergence per example, float32 [B].

    As the NeXtVLAD authors' `MixNeXtVladModel` computes it (linrongc/youtube-8m,
    nextvlad.py): with `p = softmax(mixture_logits / T)` and
    `q_m = softmax(member_logits[:, m] / T)`, both over the classes,
    `sum_m sum_c p_c * (log(p_c + 1e-8) - log(q_mc + 1e-8))`. The mixture's
    distribution is not held constant: the gradient reaches the mixture too.

    Args:
        member_logits: [B, M, C].
        mixture_logits: [B, C].
        temperature: T.
    """
    p = tf.nn.softmax(tf.cast(mixture_logits, tf.float32) / temperature, axis=-1)[:, None]
    q = tf.nn.softmax(tf.cast(member_logits, tf.float32) / temperature, axis=-1)
    kl = tf.reduce_sum(p * (tf.math.log(p + KL_EPSILON) - tf.math.log(q + KL_EPSILON)), -1)
    return tf.reduce_sum(kl, axis=-1)


def loss_terms(cfg: Config, outputs, targets) -> Dict[str, tf.Tensor]:
    """The terms of the training loss per example, float32 [B] each, by name; the
    loss is their sum.

    - `tags`, `category`: `task_losses` weighted by `model.head.tags_weight` and
      `category_weight` (the `tags` cross-entropy summed over the classes with
      `model.head.tags_loss: sum`);
    - for a model with `DISTILLATION_OUTPUTS` (MIX_NEXTVLAD), as the authors'
      train.py adds them (each weighted by `tags_weight` too): `members`, the sum
      over the members of their binary cross-entropies (`sigmoid(member_logits)`),
      over the classes averaged or summed as `tags_loss` says, and
      `distillation`, `model.cl_lambda * distillation_kl(...)`. With
      `tags_loss: sum` (the authors' cross-entropy) that is their loss exactly;
      with `mean` the divergence is divided by the number of classes too, which
      keeps their ratio of `cl_lambda * KL` to the label losses.
    """
    head = cfg.model.head
    weights = {"tags": head.tags_weight, "category": head.category_weight}
    # The label cross-entropies are averaged over the classes; `sum` multiplies back.
    class_scale = float(cfg.data.num_classes) if head.tags_loss == "sum" else 1.0
    weights["tags"] *= class_scale
    terms = {name: weights[name] * loss
             for name, loss in task_losses(outputs, targets, head.tasks).items()}
    if MEMBER_LOGITS in outputs:
        members = tf.cast(outputs[MEMBER_LOGITS], tf.float32)
        labels = tf.cast(targets["tags"], tf.float32)[:, None]
        per_member = keras.losses.binary_crossentropy(
            tf.broadcast_to(labels, tf.shape(members)), tf.sigmoid(members))
        terms["members"] = weights["tags"] * tf.reduce_sum(per_member, axis=-1)
        kl = distillation_kl(members, outputs[MIXTURE_LOGITS], cfg.model.cl_temperature)
        num_classes = tf.cast(tf.shape(members)[-1], tf.float32)
        terms["distillation"] = (weights["tags"] * cfg.model.cl_lambda * kl / num_classes)
    return terms


def loss_term_names(model: keras.Model) -> List[str]:
    """The names of the `loss_terms` the trainer logs apart for `model` (besides the
    loss): all of them for a model trained with online distillation, else none."""
    outputs = model.output if isinstance(model.output, dict) else {}
    if MEMBER_LOGITS not in outputs:
        return []
    return [name for name in ("tags", "category") if name in outputs] + ["members",
                                                                       "distillation"]


def weighted_loss(cfg: Config, outputs, targets) -> tf.Tensor:
    """The training loss per example, float32 [B]: the sum of `loss_terms`."""
    return tf.add_n(list(loss_terms(cfg, outputs, targets).values()))


def decayed_variables(model: keras.Model):
    """The variables `train.weight_decay` applies to: trainable, of rank >= 2."""
    return [v for v in model.trainable_variables if len(v.shape) >= 2]


def weight_decay_loss(variables, weight_decay: float) -> tf.Tensor:
    """`weight_decay * sum(w ** 2)` over `variables` (float32 scalar)."""
    if not weight_decay or not variables:
        return tf.constant(0.0)
    return weight_decay * tf.add_n(
        [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in variables])
