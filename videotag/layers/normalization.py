"""Batch normalization whose masked statistics follow `synchronized` too."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="videotag")
class MaskedBatchNormalization(keras.layers.BatchNormalization):
    """Keras batch normalization, with masked statistics synchronised across replicas.

    Keras takes masked moments (only the valid frames count) per replica even when
    `synchronized=True`; this layer then sums the masked sums, squared sums and
    counts over all replicas, so the statistics are those of the global batch. The
    trainer sets `synchronized` when it trains on several replicas. Unmasked calls,
    and masked calls without synchronisation, are exactly Keras's.

    Call args:
        inputs: [B, T, C].
        mask: optional bool [B, T], True for the entries that count.
    """

    def _moments(self, inputs, mask):
        context = tf.distribute.get_replica_context()
        if mask is None or not self.synchronized or context is None:
            return super()._moments(inputs, mask)
        weights = ops.cast(ops.expand_dims(mask, -1), inputs.dtype)
        weights = ops.broadcast_to(weights, ops.shape(inputs))
        axes = self._reduction_axes
        total, squares, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [
            ops.sum(inputs * weights, axes),
            ops.sum(ops.square(inputs) * weights, axes),
            ops.sum(weights, axes),
        ])
        mean = tf.math.divide_no_nan(total, count)
        variance = ops.maximum(tf.math.divide_no_nan(squares, count) - ops.square(mean), 0.0)
        return mean, variance
