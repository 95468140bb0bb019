"""Attention over frames: attention pooling (the Attention-LSTM of
PaddleVideo) and attention clusters (Long et al., CVPR 2018, arXiv 1711.09550)."""

import math

import keras
from keras import layers, ops

from videotag.layers.ops import l2_normalize, masked_softmax


@keras.saving.register_keras_serializable(package="videotag")
class AttentionPooling(keras.layers.Layer):
    """Attention-weighted sum over frames. [B, T, D] -> [B, D].

    One score per frame (`x w + b`), a masked softmax over time, and the weighted
    sum `sum_t a_t x_t`. Padded frames get weight 0.

    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        self.score = layers.Dense(1, name="score", dtype=self.dtype_policy)
        self.score.build(input_shape)

    def attention_weights(self, inputs, mask=None):
        """The weights a_t [B, T] (float32): sum to 1 over valid frames, 0 on padding."""
        return masked_softmax(self.score(inputs), mask)[..., 0]

    def call(self, inputs, mask=None):
        weights = ops.cast(self.attention_weights(inputs, mask), inputs.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="videotag")
class AttentionClusters(keras.layers.Layer):
    """C independent attention units over frames with the shifting operation.
    [B, T, D] -> [B, C*D].

    Unit c scores every frame (`x w_c + b_c`), takes a masked softmax over time and
    the weighted sum `v_c = sum_t a_tc x_t`; the shifting operation then gives
    `(alpha_c v_c + beta_c) / (sqrt(C) ||alpha_c v_c + beta_c||_2)` with learned
    scalars alpha_c, beta_c, so the units stay diverse and the concatenation has
    unit norm. As in PaddlePaddle's `ShiftingAttentionModel` (the YT8M
    implementation), alpha and beta start from N(0, sqrt(1 / sqrt(C))).

    Args:
        num_clusters: C, the attention units.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, num_clusters=32, **kwargs):
        super().__init__(**kwargs)
        self.num_clusters = num_clusters
        self.supports_masking = True

    def build(self, input_shape):
        c = self.num_clusters
        self.score = layers.Dense(c, name="scores", dtype=self.dtype_policy)
        self.score.build(input_shape)
        stddev = math.sqrt(1.0 / math.sqrt(c))
        self.alpha = self.add_weight(name="alpha", shape=(c,),
                                     initializer=keras.initializers.RandomNormal(0.0, stddev))
        self.beta = self.add_weight(name="beta", shape=(c,),
                                    initializer=keras.initializers.RandomNormal(0.0, stddev))

    def attention_weights(self, inputs, mask=None):
        """The weights [B, T, C] (float32): per unit, 1 over valid frames, 0 on padding."""
        return masked_softmax(self.score(inputs), mask, axis=1)

    def call(self, inputs, mask=None):
        weights = ops.cast(self.attention_weights(inputs, mask), inputs.dtype)
        pooled = ops.matmul(ops.transpose(weights, (0, 2, 1)), inputs)  # [B, C, D]
        shifted = pooled * self.alpha[None, :, None] + self.beta[None, :, None]
        out = l2_normalize(shifted, axis=-1) / math.sqrt(self.num_clusters)
        return ops.reshape(out, (ops.shape(inputs)[0], -1))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_clusters * int(input_shape[-1]))

    def get_config(self):
        return {**super().get_config(), "num_clusters": self.num_clusters}
