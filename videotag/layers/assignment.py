"""Soft assignment of frames to learned clusters: the first step of every LOUPE pooling."""

import math

import keras
from keras import layers, ops

from videotag.layers.normalization import MaskedBatchNormalization


@keras.saving.register_keras_serializable(package="videotag")
class SoftAssignment(keras.layers.Layer):
    """`softmax_K(batchnorm(x W))`, zeroed on padded frames. [B, T, D] -> [B, T, K].

    The batch norm takes its training statistics over valid frames only (the mask),
    so padding changes neither the assignments nor the moving statistics.

    Args:
        cluster_size: K.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.supports_masking = True

    def build(self, input_shape):
        feature_size = int(input_shape[-1])
        self.logits = layers.Dense(
            self.cluster_size, use_bias=False, name="logits", dtype=self.dtype_policy,
            kernel_initializer=keras.initializers.RandomNormal(stddev=1 / math.sqrt(feature_size)))
        self.logits_bn = MaskedBatchNormalization(name="logits_bn", dtype=self.dtype_policy)
        self.logits.build(input_shape)
        self.logits_bn.build((None, None, self.cluster_size))

    def call(self, inputs, mask=None, training=None):
        logits = self.logits_bn(self.logits(inputs), training=training, mask=mask)
        assign = ops.softmax(logits, axis=-1)
        if mask is not None:
            assign = assign * ops.expand_dims(ops.cast(mask, assign.dtype), -1)
        return assign

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.cluster_size)

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size}

