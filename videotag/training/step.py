"""The training step: losses, FGM, gradients summed over replicas, the update.

On each replica the step computes its videos' losses, each divided by the number of
videos of the *global* batch, takes the gradients, and sums them over the replicas
(one all-reduce); the sum is the gradient of the global batch's mean loss. Clipping
(by global norm, or variable by variable), the float16 loss scale's overflow check
and the update then all see that global gradient, on every replica alike.
"""

from __future__ import annotations

from typing import Dict

import keras
import tensorflow as tf

from videotag.config import Config
from videotag.config.optimizer import OPTIMIZERS
from videotag.training.adversarial import SplitModel, fgm_forward
from videotag.training.learning_rates import LearningRateMultipliers
from videotag.training.losses import (
    decayed_variables,
    loss_term_names,
    loss_terms,
    weight_decay_loss,
)
from videotag.training.schedules import learning_rate_schedule

SUM = tf.distribute.ReduceOp.SUM


class ReducedGradientsAdam(LearningRateMultipliers, keras.optimizers.Adam):
    """Adam for gradients that the train step has already summed over replicas,
    with per-variable learning-rate multipliers (`train.lr_multipliers`).

    Keras's TensorFlow optimizer sums the gradients over replicas itself, after
    clipping them replica by replica; the train step sums first (so that clipping
    and the overflow check see the global gradient), and this optimizer does not
    sum again.

    This overrides a private Keras method, `_all_reduce_sum_gradients`: Keras 3 has
    no public way to apply gradients already summed over replicas (`apply()` in a
    replica context always sums them; the loss-scale optimizer refuses a
    cross-replica context). tests/test_keras_hooks.py fails, naming the hook, when
    a Keras release changes it; pyproject.toml allows the Keras releases it passed
    with. `ReducedGradientsAdamW` and `ReducedGradientsRMSprop` take the same hook.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)

    def update_step(self, gradient, variable, learning_rate):
        """Keras's Adam update in one pass over the variable: TensorFlow's fused
        `ResourceApplyAdam` kernel computes Keras's formula (`m += (g - m)(1 -
        beta_1)`, `v += (g^2 - v)(1 - beta_2)`, `var -= m alpha / (sqrt(v) +
        epsilon)` with `alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)`) where
        Keras runs about ten element-wise operations, each a pass over the
        variable's memory (89 M weights in the paper-size NeXtVLAD). The kernel is
        the one TF1's `tf.train.AdamOptimizer` ran (the YT8M references'): it takes
        `1 - beta_2` from float32 `beta_2`, where Keras rounds `1 - 0.999` from
        float64, so the second moments are 1.3e-5 apart relatively and the weights
        within 1e-6 (tests/test_keras_hooks.py). AMSGrad, sparse gradients and
        non-float32 variables take Keras's own update."""
        if (self.amsgrad or isinstance(gradient, tf.IndexedSlices)
                or variable.dtype != tf.float32):
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = self.multiplied_learning_rate(variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.cast(self.beta_1, tf.float32)
        beta_2 = tf.cast(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32))


class ReducedGradientsAdamW(LearningRateMultipliers, keras.optimizers.AdamW):
    """AdamW for gradients already summed over replicas, with per-variable
    learning-rate multipliers (see `ReducedGradientsAdam`)."""

    _all_reduce_sum_gradients = ReducedGradientsAdam._all_reduce_sum_gradients


class ReducedGradientsRMSprop(LearningRateMultipliers, keras.optimizers.RMSprop):
    """RMSprop for gradients already summed over replicas, with per-variable
    learning-rate multipliers (see `ReducedGradientsAdam`)."""

    _all_reduce_sum_gradients = ReducedGradientsAdam._all_reduce_sum_gradients


# `train.optimizer.type` -> (the Keras class for the train step, the plain Keras class)
OPTIMIZER_CLASSES = {
    "adam": (ReducedGradientsAdam, keras.optimizers.Adam),
    "adamw": (ReducedGradientsAdamW, keras.optimizers.AdamW),
    "rmsprop": (ReducedGradientsRMSprop, keras.optimizers.RMSprop),
}


def make_optimizer(cfg: Config, steps_per_epoch: int = 0, summed_by_step: bool = True):
    """The optimizer of `train.optimizer` with the configured learning-rate schedule,
    the moving average of the weights when `train.ema_decay` is set (Keras's own
    `use_ema`, whose averages are optimizer variables and so go into every
    checkpoint), wrapped in a dynamic loss scale for mixed_float16. Create it
    inside the strategy's scope.

    The schedule is kept as `optimizer.lr_schedule` (the trainer tells an
    epoch-driven one the epoch: `schedules.set_epoch`).

    Args:
        cfg: the run's config.
        steps_per_epoch: steps of an epoch, for a cosine schedule over the run.
        summed_by_step: for `TrainStep`, which sums the gradients over replicas
            and clips them itself; False: Keras's own optimizer class, clipping by
            `train.clip_gradient_norm` (the global norm, or each variable's with
            `train.clip_gradient_per_variable`; for `model.fit`).
    """
    t = cfg.train
    schedule = learning_rate_schedule(cfg, steps_per_epoch)
    kwargs = OPTIMIZERS.build(t.optimizer)
    if t.ema_decay:
        kwargs.update(use_ema=True, ema_momentum=t.ema_decay)
    if not summed_by_step and t.clip_gradient_norm:
        kwargs["clipnorm" if t.clip_gradient_per_variable else "global_clipnorm"] = \
            t.clip_gradient_norm
    ours, plain = OPTIMIZER_CLASSES[t.optimizer.type]
    optimizer = (ours if summed_by_step else plain)(schedule, **kwargs)
    if t.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.lr_schedule = schedule
    return optimizer


class TrainStep:
    """One optimisation step over the global batch, on every replica.

    Call it with a distributed batch (an element of `distributed_batches`); it
    returns float32 scalars: `loss` (what is minimised: clean + fgm_alpha *
    adversarial + regularisation), `clean_loss`, `adversarial_loss` (0 without FGM),
    `grad_norm` (global norm of the gradient before clipping) and, for a model
    trained with online distillation, `<term>_loss` of each of `terms` (the
    clean pass's `tags`, `members` and `distillation` terms).

    Args:
        cfg: the run's config.
        model: the model, built in the strategy's scope.
        optimizer: from `make_optimizer`, built on the model's trainable variables.
        strategy: the strategy.
    """

    def __init__(self, cfg: Config, model: keras.Model, optimizer, strategy):
        t = cfg.train
        self.cfg = cfg
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync
        self.float16 = t.mixed_precision == "mixed_float16"
        self.split = SplitModel(model) if t.fgm_alpha > 0 else None
        self.decayed = decayed_variables(model) if t.weight_decay else []
        self.variables = model.trainable_variables
        self.terms = loss_term_names(model)
        replica_step, self._compute = self._replica_step, self._gradients
        if t.jit_compile:
            if self.replicas == 1:  # the whole step, update included
                replica_step = tf.function(replica_step, jit_compile=True)
            else:  # the all-reduces stay outside XLA
                self._compute = tf.function(self._compute, jit_compile=True)
        self._replica_fn = replica_step
        self._function = tf.function(self._step, reduce_retracing=True)

    def __call__(self, batch) -> Dict[str, tf.Tensor]:
        return self._function(batch)

    def _step(self, batch):
        per_replica = self.strategy.run(self._replica_fn, args=batch)
        return {k: self.strategy.reduce(SUM, v, axis=None) for k, v in per_replica.items()}

    def _loss_fn(self, targets, count, terms: Dict[str, tf.Tensor]):
        """outputs -> the loss of the replica's videos over the global count; the
        first call (the clean pass) also puts the logged terms into `terms`."""

        def loss(outputs):
            parts = loss_terms(self.cfg, outputs, targets)
            if not terms:
                terms.update({f"{name}_loss": tf.reduce_sum(parts[name]) / count
                              for name in self.terms})
            return tf.reduce_sum(tf.add_n(list(parts.values()))) / count

        return loss

    def _losses(self, inputs, targets, count):
        t = self.cfg.train
        terms: Dict[str, tf.Tensor] = {}
        loss_fn = self._loss_fn(targets, count, terms)
        if self.split is not None:
            scale = self.optimizer.scale_loss if self.float16 else None
            clean, adversarial, _ = fgm_forward(self.split, inputs, loss_fn, t.fgm_epsilon,
                                                training=True, scale_fn=scale)
        else:
            clean, adversarial = loss_fn(self.model(inputs, training=True)), tf.constant(0.0)
        regularization = weight_decay_loss(self.decayed, t.weight_decay)
        if self.model.losses:
            regularization += tf.add_n([tf.cast(x, tf.float32) for x in self.model.losses])
        # every replica adds it; the sum over replicas counts it once
        total = clean + t.fgm_alpha * adversarial + regularization / self.replicas
        return total, {"loss": total, "clean_loss": clean, "adversarial_loss": adversarial,
                       **terms}

    def _gradients(self, inputs, targets, count):
        with tf.GradientTape() as tape:
            total, parts = self._losses(inputs, targets, count)
            scaled = self.optimizer.scale_loss(total) if self.float16 else total
        grads = tape.gradient(scaled, self.variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.variables)]
        return grads, parts

    def _replica_step(self, inputs, targets):
        context = tf.distribute.get_replica_context()
        count = tf.cast(tf.shape(tf.nest.flatten(targets)[0])[0], tf.float32)
        if self.replicas > 1:
            count = context.all_reduce(SUM, count)
        grads, parts = self._compute(inputs, targets, count)
        # an embedding's gradient comes as IndexedSlices, one row per token occurrence;
        # the global norm and Keras's Adam (which squares the rows) need the summed
        # dense gradient, with one replica as with several
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        if self.replicas > 1:
            grads = context.all_reduce(SUM, grads)
        # each gradient's squared norm, read once: the global norm and the clipping
        # variable by variable (tf.clip_by_norm's `g * clip / max(||g||, clip)`)
        # both come from it
        squares = [2.0 * tf.nn.l2_loss(g) for g in grads]
        norm = tf.sqrt(tf.add_n(squares))
        scale = tf.cast(self.optimizer.dynamic_scale, tf.float32) if self.float16 else 1.0
        clip = self.cfg.train.clip_gradient_norm
        if clip and self.cfg.train.clip_gradient_per_variable:
            limit = clip * scale
            grads = [clipped_by_norm(g, s, limit) for g, s in zip(grads, squares)]
        elif clip:
            grads, _ = tf.clip_by_global_norm(grads, clip * scale, use_norm=norm)
        self.optimizer.apply(grads, self.variables)
        parts["grad_norm"] = norm / scale / self.replicas  # summed over replicas
        return parts


def clipped_by_norm(gradient, square, limit):
    """tf.clip_by_norm's `gradient * limit / max(||gradient||, limit)`, given the
    squared norm. A gradient of a million entries or more whose norm is within the
    limit (its factor is exactly 1) comes back as it is, without a pass over it."""
    factor = limit / tf.maximum(tf.sqrt(square), limit)
    size = gradient.shape.num_elements()
    if size is None or size < 1 << 20:
        return gradient * factor
    return tf.cond(factor < 1.0, lambda: gradient * factor, lambda: gradient)
