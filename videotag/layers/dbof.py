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
ACTIVATIONS = ("sigmoid", "relu6")


def _mask3(mask, dtype):
    return ops.expand_dims(ops.cast(mask, dtype), -1)


@keras.saving.register_keras_serializable(package="videotag")
class SoftDBoF(keras.layers.Layer):
    """Soft deep bag of frames. [B, T, D] -> [B, K] (or [B, 2K] with `max_pool`).

    Soft assignments `a = softmax_K(bn(x W))` summed over the valid frames and
    L2-normalised (a learned soft histogram of the video; `SoftDBoF` of the LOUPE
    authors' YT8M code). With `max_pool` the L2-normalised maximum over frames is
    appended.

    With `gated` it is their `GatedDBoF`: the sum `s = sum_t a_t` is gated by the
    L2-normalised maximum `m = max_t a_t`, `s * sigmoid(bn(m R W2))` (R: K x D,
    W2: D x K, no biases), and the gated sum is L2-normalised.

    Args:
        cluster_size: K.
        max_pool: also append the max-pooled assignments (not with `gated`).
        gated: gate the summed assignments by their maximum.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size=4096, max_pool=False, gated=False, **kwargs):
        super().__init__(**kwargs)
        if gated and max_pool:
            raise ValueError("SoftDBoF takes `gated` or `max_pool`, not both")
        self.cluster_size = cluster_size
        self.max_pool = max_pool
        self.gated = bool(gated)
        self.supports_masking = True

    def build(self, input_shape):
        self.assignment = SoftAssignment(self.cluster_size, name="assignment",
                                         dtype=self.dtype_policy)
        self.assignment.build(input_shape)
        if self.gated:
            feature_size, k = int(input_shape[-1]), self.cluster_size
            init = keras.initializers.RandomNormal(stddev=1 / math.sqrt(feature_size))
            self.reduce = layers.Dense(feature_size, use_bias=False, name="gate_reduce",
                                       kernel_initializer=init, dtype=self.dtype_policy)
            self.expand = layers.Dense(k, use_bias=False, name="gate_expand",
                                       kernel_initializer=init, dtype=self.dtype_policy)
            self.gate_bn = layers.BatchNormalization(name="gate_bn", dtype=self.dtype_policy)
            self.reduce.build((None, k))
            self.expand.build((None, feature_size))
            self.gate_bn.build((None, k))

    def call(self, inputs, mask=None, training=None):
        assign = self.assignment(inputs, mask=mask, training=training)  # 0 on padding
        total = ops.sum(assign, axis=1)
        # assignments are >= 0 and 0 on padding: a plain max is masked
        if self.gated:
            peak = l2_normalize(ops.max(assign, axis=1))
            gates = self.gate_bn(self.expand(self.reduce(peak)), training=training)
            return l2_normalize(total * keras.activations.sigmoid(gates))
        out = l2_normalize(total)
        if self.max_pool:
            out = ops.concatenate([out, l2_normalize(ops.max(assign, axis=1))], axis=-1)
        return out

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.cluster_size * (2 if self.max_pool else 1))

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "max_pool": self.max_pool, "gated": self.gated}


@keras.saving.register_keras_serializable(package="videotag")
class DBoF(keras.layers.Layer):
    """Deep bag of frames (YT8M starter code). [B, T, D] -> [B, K].

    Every frame is projected to K "cluster" units, batch-normalised (statistics over
    valid frames only) and passed through the activation (sigmoid or relu6, both
    >= 0); the video is the max (or the mean) over its valid frames.

    Args:
        cluster_size: K.
        pooling: "max" or "average".
        activation: "sigmoid" (the starter code's `dbof_activation` default since
            2019) or "relu6" (before; videotag 0.1's, its `.keras` files load
            with it).
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size=8192, pooling="max", activation="sigmoid", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"DBoF pooling is '{pooling}'; valid: {', '.join(POOLINGS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"DBoF activation is '{activation}'; valid: "
                             f"{', '.join(ACTIVATIONS)}")
        self.cluster_size = cluster_size
        self.pooling = pooling
        self.activation = activation
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
        x = keras.activations.get(self.activation)(x)  # >= 0
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
                "pooling": self.pooling, "activation": self.activation}

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `activation` existed used relu6
        return cls(**{"activation": "relu6", **config})
