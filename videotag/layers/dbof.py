"""Bag-of-frames pooling: soft DBoF (LOUPE, Miech et al. 2017) and DBoF (the YT8M
starter code, Abu-El-Haija et al. 2016, arXiv 1609.08675).

Both project every frame into a large "cluster" space and pool over the valid
frames only; the pooling is symmetric, so frame order does not matter.
"""

import math

import keras
from keras import layers, ops

from videotag.layers.assignment import SoftAssignment
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.layers.ops import l2_normalize

POOLINGS = ("max", "average")


def _mask3(mask, dtype):
    return ops.expand_dims(ops.cast(mask, dtype), -1)


@keras.saving.register_keras_serializable(package="videotag")
class SoftDBoF(keras.layers.Layer):
    """Soft deep bag of frames. [B, T, D] -> [B, K] (or [B, 2K] with `max_pool`).

    Soft assignments `a = softmax_K(bn(x W))` summed over the valid frames and
    L2-normalised (a learned soft histogram of the video). With `max_pool` the
    L2-normalised maximum over frames is appended.

    Args:
        cluster_size: K.
        max_pool: also append the max-pooled assignments.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size=4096, max_pool=False, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.max_pool = max_pool
        self.supports_masking = True

    def build(self, input_shape):
        self.assignment = SoftAssignment(self.cluster_size, name="assignment",
                                         dtype=self.dtype_policy)
        self.assignment.build(input_shape)

    def call(self, inputs, mask=None, training=None):
        assign = self.assignment(inputs, mask=mask, training=training)  # 0 on padding
        out = l2_normalize(ops.sum(assign, axis=1))
        if self.max_pool:  # assignments are >= 0 and 0 on padding: a plain max is masked
            out = ops.concatenate([out, l2_normalize(ops.max(assign, axis=1))], axis=-1)
        return out

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.cluster_size * (2 if self.max_pool else 1))

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "max_pool": self.max_pool}


@keras.saving.register_keras_serializable(package="videotag")
class DBoF(keras.layers.Layer):
    """Deep bag of frames (YT8M starter code). [B, T, D] -> [B, K].

    Every frame is projected to K "cluster" units, batch-normalised (statistics over
    valid frames only) and passed through relu6; the video is the max (or the mean)
    over its valid frames.

    Args:
        cluster_size: K.
        pooling: "max" or "average".
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size=8192, pooling="max", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"DBoF pooling is '{pooling}'; valid: {', '.join(POOLINGS)}")
        self.cluster_size = cluster_size
        self.pooling = pooling
        self.supports_masking = True

    def build(self, input_shape):
        feature_size = int(input_shape[-1])
        self.project = layers.Dense(
            self.cluster_size, use_bias=False, name="clusters", dtype=self.dtype_policy,
            kernel_initializer=keras.initializers.RandomNormal(stddev=1 / math.sqrt(feature_size)))
        self.project_bn = MaskedBatchNormalization(name="clusters_bn", dtype=self.dtype_policy)
        self.project.build(input_shape)
        self.project_bn.build((None, None, self.cluster_size))

    def call(self, inputs, mask=None, training=None):
        x = self.project_bn(self.project(inputs), training=training, mask=mask)
        x = keras.activations.relu6(x)  # >= 0
        if mask is None:
            return ops.max(x, axis=1) if self.pooling == "max" else ops.mean(x, axis=1)
        weights = _mask3(mask, x.dtype)
        if self.pooling == "max":  # values are >= 0: zeroing padded frames masks them
            return ops.max(x * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        return ops.sum(x * weights, axis=1) / count

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.cluster_size)

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "pooling": self.pooling}
