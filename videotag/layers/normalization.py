"""Batch normalization whose masked statistics follow `synchronized` too."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="videotag")
class MaskedBatchNormalization(keras.layers.BatchNormalization):
    """Keras batch normalization, with masked statistics synchronised across replicas.

    Keras takes masked moments (only the valid frames count) per replica even when
    `synchronized=True`; in training with a mask this layer computes the moments
    itself: per replica exactly as Keras does (so results do not change), and with
    `synchronized` from the masked sums, squared sums and counts summed over all
    replicas, so the statistics are those of the global batch. The trainer sets
    `synchronized` when it trains on several replicas. Calls without a mask or
    outside training are Keras's own.

    Only the public Keras API is used: `call` is overridden, not Keras's moments.

    Args:
        **kwargs: those of `keras.layers.BatchNormalization`, but `renorm`.
    Call args:
        inputs: [B, T, C].
        mask: optional bool [B, T], True for the entries that count.
        training: update and use the batch statistics.

    Raises:
        ValueError: `renorm=True` (batch renormalization is not supported), or a
            mask that is not one dimension less than the inputs.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if getattr(self, "renorm", False):  # Keras >= 3.13 has batch renormalization
            raise ValueError("MaskedBatchNormalization does not support renorm=True")

    def call(self, inputs, training=None, mask=None):
        if mask is None or not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        if len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError(f"the mask must have one dimension less than the inputs; got "
                             f"mask.shape={mask.shape}, inputs.shape={inputs.shape}")
        # float16 / bfloat16 inputs are normalised in float32, as Keras does
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = self.masked_moments(x, mask)
        moving_mean = ops.cast(self.moving_mean, x.dtype)
        moving_variance = ops.cast(self.moving_variance, x.dtype)
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            moving_variance * self.momentum + variance * (1.0 - self.momentum))
        out = ops.batch_normalization(
            x, mean, variance, axis=self.axis,
            offset=ops.cast(self.beta, x.dtype) if self.center else None,
            scale=ops.cast(self.gamma, x.dtype) if self.scale else None,
            epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)

    def masked_moments(self, x, mask):
        """(mean, variance) [C] of `x` over the entries where `mask` is True.

        Without synchronisation (or outside a replica context), the formula of
        Keras's masked batch normalization: `sum / (count + epsilon)` for the mean
        and the masked squared deviations over the same for the variance. With
        `synchronized` in a replica context, the sums, squared sums and counts of
        all replicas give `E[x] = S / N` and `Var[x] = max(E[x^2] - E[x]^2, 0)`.
        """
        rank = len(x.shape)
        axes = [i for i in range(rank) if i != self.axis % rank]
        context = tf.distribute.get_replica_context()
        if self.synchronized and context is not None:
            valid = ops.broadcast_to(ops.expand_dims(ops.cast(mask, "bool"), -1), ops.shape(x))
            weights = ops.cast(valid, x.dtype)
            total, squares, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [
                ops.sum(x * weights, axes),
                ops.sum(ops.square(x) * weights, axes),
                ops.sum(weights, axes),
            ])
            mean = tf.math.divide_no_nan(total, count)
            return mean, ops.maximum(tf.math.divide_no_nan(squares, count) - ops.square(mean),
                                     0.0)
        # Keras's formula, with the valid count taken from the mask itself and the
        # mask broadcast inside `where` (no [B, T, C] copies of it): counts of at
        # most 2^24 entries are exact in float32 in any order, so the moments are
        # Keras's to the bit
        frames = ops.expand_dims(ops.cast(mask, "bool"), -1)  # [..., 1]
        count = ops.sum(ops.cast(frames, x.dtype), axes, keepdims=True) + keras.config.epsilon()
        mean = ops.sum(ops.where(frames, x, 0), axes, keepdims=True) / count
        squares = ops.sum(ops.square(ops.where(frames, x - mean, 0)), axes, keepdims=True)
        return ops.squeeze(mean), ops.squeeze(squares / count)
