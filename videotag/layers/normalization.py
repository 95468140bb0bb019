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
        synchronized = self.synchronized and tf.distribute.get_replica_context() is not None
        if (not synchronized and self.center and self.scale
                and self.axis % len(x.shape) == len(x.shape) - 1):
            out, mean, variance = self._normalize_per_replica(x, mask)
        else:  # the moments of all replicas: the all-reduces are differentiated as they are
            mean, variance = self.masked_moments(x, mask)
            out = ops.batch_normalization(
                x, mean, variance, axis=self.axis,
                offset=ops.cast(self.beta, x.dtype) if self.center else None,
                scale=ops.cast(self.gamma, x.dtype) if self.scale else None,
                epsilon=self.epsilon)
        moving_mean = ops.cast(self.moving_mean, x.dtype)
        moving_variance = ops.cast(self.moving_variance, x.dtype)
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(out, self.compute_dtype)

    def _normalize_per_replica(self, x, mask):
        """(normalized x, mean, variance) in training, the moments Keras's masked
        ones (`masked_moments`), with the gradient written out: the same function
        as TensorFlow differentiating the moments' ops, in fewer passes over x.

        With y = (x - m) * r * gamma + beta, r = (v + eps)^-1/2, and the moments
        m = sum_valid(x) / N, v = sum_valid((x - m)^2) / N (N = the valid count
        plus Keras's epsilon):
        dbeta = sum(dy), dgamma = sum(dy * (x - m) * r) (both over every entry),
        dv = -gamma * r^2 * dgamma / 2, dm = -gamma * r * dbeta - 2 dv * S1 / N with
        S1 = sum_valid(x - m) = m * (N - valid count), and
        dx = gamma * r * dy + valid * (dm + 2 dv * (x - m)) / N.
        TensorFlow's fused batch norm gradient (inference form, given m and v)
        computes the first three in one pass over dy and x.
        """
        frames = ops.expand_dims(ops.cast(mask, "bool"), -1)  # [..., 1]
        gamma, beta = ops.cast(self.gamma, x.dtype), ops.cast(self.beta, x.dtype)
        epsilon = self.epsilon

        # the gradient's ops are named as TensorFlow names its own (profiles group them)
        scope = "/".join(["gradient_tape", tf.get_current_name_scope()]).rstrip("/") + "/"

        @tf.custom_gradient
        def normalize(x, gamma, beta):
            mean, variance = self.masked_moments(x, mask)
            out = ops.batch_normalization(x, mean, variance, axis=-1, offset=beta,
                                          scale=gamma, epsilon=epsilon)

            def gradient(dy, dmean, dvariance):
                with tf.name_scope(scope):
                    return normalize_gradient(dy, dmean, dvariance)

            def normalize_gradient(dy, dmean, dvariance):
                channels = x.shape[-1]
                flat = (-1, 1, 1, channels)  # the fused kernel's NHWC
                dx_direct, dgamma, dbeta, _, _ = tf.raw_ops.FusedBatchNormGradV3(
                    y_backprop=tf.reshape(dy, flat), x=tf.reshape(x, flat), scale=gamma,
                    reserve_space_1=mean, reserve_space_2=variance,
                    reserve_space_3=tf.zeros([0], x.dtype), epsilon=epsilon,
                    data_format="NHWC", is_training=False)
                valid = tf.reduce_sum(tf.cast(frames, x.dtype))
                count = valid + keras.config.epsilon()
                inverse = tf.math.rsqrt(variance + epsilon)
                d_variance = -0.5 * gamma * tf.square(inverse) * dgamma
                if dvariance is not None:
                    d_variance += dvariance
                d_mean = -gamma * inverse * dbeta - 2.0 * d_variance * mean * (count - valid) / count
                if dmean is not None:
                    d_mean += dmean
                # (dm + 2 dv (x - m)) / N as x * a + b: two passes over x
                a = (2.0 / count) * d_variance
                by_entry = x * a + (d_mean / count - a * mean)
                dx = tf.reshape(dx_direct, tf.shape(x)) + tf.where(frames, by_entry, 0.0)
                return dx, dgamma, dbeta

            return (out, mean, variance), gradient

        out, mean, variance = normalize(x, gamma, beta)
        return out, tf.stop_gradient(mean), tf.stop_gradient(variance)

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
        # (x - mean)^2 in one op (TensorFlow's squared difference is (x - m) * (x - m),
        # the square's own product: the same bits, one pass less)
        squares = ops.sum(ops.where(frames, tf.math.squared_difference(x, mean), 0), axes,
                          keepdims=True)
        return ops.squeeze(mean), ops.squeeze(squares / count)
