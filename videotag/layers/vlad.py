"""NeXtVLAD aggregation (Lin et al. 2018, arXiv 1811.05014)."""

import keras
from keras import layers, ops

from videotag.layers.normalization import MaskedBatchNormalization


@keras.saving.register_keras_serializable(package="videotag")
class NeXtVLAD(keras.layers.Layer):
    """Aggregates frames [B, T, N] into one VLAD vector [B, K * lambda*N / G].

    Steps (per the paper): expand each frame to lambda*N; split it into G groups of
    lambda*N/G; a sigmoid attention per group and frame; soft-assign every group
    vector to K clusters (dense lambda*N -> G*K, batch norm, softmax over K); sum
    the residuals to learned centres over frames and groups, weighted by assignment
    x attention x frame mask; intra-normalise (L2 per cluster); flatten.

    Padded frames never count: their attention is zeroed by the mask and the batch
    norm of the assignments takes its statistics over valid frames only, so neither
    the output nor the training statistics depend on padding or on frame order.

    Args:
        cluster_size: K, the number of clusters.
        groups: G, the number of groups.
        expansion: lambda, the frame expansion factor.
    Call args:
        inputs: float frames [B, T, N].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size=128, groups=8, expansion=2, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.groups = groups
        self.expansion = expansion
        self.supports_masking = True

    def build(self, input_shape):
        feature_size = int(input_shape[-1])
        expanded = self.expansion * feature_size
        if expanded % self.groups:
            raise ValueError(
                f"expansion * feature size ({expanded}) must divide by groups ({self.groups})"
            )
        self.group_size = expanded // self.groups
        k, g = self.cluster_size, self.groups
        self.expand = layers.Dense(expanded, name="expand")
        self.attention = layers.Dense(g, activation="sigmoid", name="group_attention")
        self.assign = layers.Dense(g * k, use_bias=False, name="cluster_assign")
        self.assign_bn = MaskedBatchNormalization(name="cluster_assign_bn")
        self.expand.build(input_shape)
        self.attention.build((None, None, expanded))
        self.assign.build((None, None, expanded))
        self.assign_bn.build((None, None, g * k))
        self.centers = self.add_weight(
            name="centers",
            shape=(self.group_size, k),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )

    def call(self, inputs, mask=None, training=None):
        k, g, d = self.cluster_size, self.groups, self.group_size
        batch, steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
        x = self.expand(inputs)  # [B, T, lambda*N]
        attention = self.attention(x)  # [B, T, G]
        assign = self.assign(x)  # [B, T, G*K]
        if mask is not None:
            attention = attention * ops.expand_dims(ops.cast(mask, attention.dtype), -1)
        assign = self.assign_bn(assign, training=training, mask=mask)
        assign = ops.softmax(ops.reshape(assign, (batch, steps, g, k)), axis=-1)
        weights = assign * ops.expand_dims(attention, -1)  # [B, T, G, K]
        weights = ops.reshape(weights, (batch, steps * g, k))
        groups = ops.reshape(x, (batch, steps * g, d))
        vlad = ops.matmul(ops.transpose(weights, (0, 2, 1)), groups)  # [B, K, d]
        mass = ops.expand_dims(ops.sum(weights, axis=1), -1)  # [B, K, 1]
        vlad = vlad - mass * ops.transpose(self.centers)[None]
        vlad = _l2_normalize(vlad, axis=-1)  # intra-normalisation, per cluster
        return ops.reshape(vlad, (batch, k * d))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        expanded = self.expansion * int(input_shape[-1])
        return (input_shape[0], self.cluster_size * expanded // self.groups)

    def get_config(self):
        return {
            **super().get_config(),
            "cluster_size": self.cluster_size,
            "groups": self.groups,
            "expansion": self.expansion,
        }


def _l2_normalize(x, axis):
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))
    return x / norm
