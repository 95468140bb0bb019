"""VLAD-family aggregation: NeXtVLAD (Lin et al. 2018, arXiv 1811.05014) and the
LOUPE layers NetVLAD, NetRVLAD and NetFV (Miech et al. 2017, arXiv 1706.06905).

Every layer here sums over frames weighted by soft cluster assignments that are zero
on padded frames, so the output depends neither on padding nor on frame order.
"""

import math

import keras
import tensorflow as tf
from keras import layers, ops

from videotag.layers.assignment import SoftAssignment
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.layers.ops import l2_normalize


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
        self.expand = layers.Dense(expanded, name="expand", dtype=self.dtype_policy)
        self.attention = layers.Dense(g, activation="sigmoid", name="group_attention",
                                      dtype=self.dtype_policy)
        self.assign = layers.Dense(g * k, use_bias=False, name="cluster_assign",
                                   dtype=self.dtype_policy)
        self.assign_bn = MaskedBatchNormalization(name="cluster_assign_bn",
                                                  dtype=self.dtype_policy)
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
        # weights^T groups without a transpose of the weights (nor of their gradient)
        vlad = tf.linalg.matmul(weights, groups, transpose_a=True)  # [B, K, d]
        mass = ops.expand_dims(ops.sum(weights, axis=1), -1)  # [B, K, 1]
        vlad = vlad - mass * ops.transpose(self.centers)[None]
        vlad = l2_normalize(vlad, axis=-1)  # intra-normalisation, per cluster
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


def _residual_init(feature_size):
    return keras.initializers.RandomNormal(stddev=1 / math.sqrt(feature_size))


@keras.saving.register_keras_serializable(package="videotag")
class NetVLAD(keras.layers.Layer):
    """NetVLAD pooling (Arandjelovic et al. 2016), as LOUPE uses it. [B, T, D] -> [B, K*D].

    `a = softmax_K(bn(x W))` per frame (zero on padding); per cluster k the sum of
    residuals `v_k = sum_t a_tk (x_t - c_k)` to a learned centre c_k; each v_k is
    L2-normalised (intra-normalisation), then the flattened vector is L2-normalised.

    Args:
        cluster_size: K.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    residuals = True  # NetRVLAD drops the centres

    def __init__(self, cluster_size=64, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.supports_masking = True

    def build(self, input_shape):
        feature_size = int(input_shape[-1])
        self.assignment = SoftAssignment(self.cluster_size, name="assignment",
                                         dtype=self.dtype_policy)
        self.assignment.build(input_shape)
        if self.residuals:
            self.centers = self.add_weight(
                name="centers", shape=(self.cluster_size, feature_size),
                initializer=_residual_init(feature_size))

    def call(self, inputs, mask=None, training=None):
        assign = self.assignment(inputs, mask=mask, training=training)  # [B, T, K]
        vlad = ops.matmul(ops.transpose(assign, (0, 2, 1)), inputs)  # [B, K, D]
        if self.residuals:
            mass = ops.expand_dims(ops.sum(assign, axis=1), -1)  # [B, K, 1]
            vlad = vlad - mass * ops.expand_dims(self.centers, 0)
        vlad = l2_normalize(vlad, axis=-1)  # intra-normalisation
        vlad = ops.reshape(vlad, (ops.shape(inputs)[0], -1))
        return l2_normalize(vlad, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.cluster_size * int(input_shape[-1]))

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size}


@keras.saving.register_keras_serializable(package="videotag")
class NetRVLAD(NetVLAD):
    """NetRVLAD ("residual-less" NetVLAD, LOUPE): NetVLAD without centres,
    `v_k = sum_t a_tk x_t`, intra- and L2-normalised. [B, T, D] -> [B, K*D]."""

    residuals = False


@keras.saving.register_keras_serializable(package="videotag")
class NetFV(keras.layers.Layer):
    """NetFV: a learnable Fisher vector (LOUPE). [B, T, D] -> [B, 2*K*D].

    With soft assignments `a_tk` (zero on padding), learned means `c_k` and scales
    `s_k = w_k^2 + 1e-6` (per dimension):
    first order `f1_k = sum_t a_tk (x_t - c_k) / s_k`,
    second order `f2_k = sum_t a_tk [((x_t - c_k) / s_k)^2 - 1]`.
    As in LOUPE's NetFV (loupe.py and the authors' YT8M code), the first order is
    intra-normalised (L2 per cluster) and then L2-normalised as a whole; the second
    order only as a whole. The two are concatenated.

    Args:
        cluster_size: K.
        intra_normalize_second: also intra-normalise the second order (videotag 0.1
            did; its `.keras` files load with it).
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, cluster_size=64, intra_normalize_second=False, **kwargs):
        super().__init__(**kwargs)
        self.cluster_size = cluster_size
        self.intra_normalize_second = bool(intra_normalize_second)
        self.supports_masking = True

    def build(self, input_shape):
        feature_size = int(input_shape[-1])
        self.assignment = SoftAssignment(self.cluster_size, name="assignment",
                                         dtype=self.dtype_policy)
        self.assignment.build(input_shape)
        shape = (self.cluster_size, feature_size)
        self.centers = self.add_weight(name="centers", shape=shape,
                                       initializer=_residual_init(feature_size))
        self.scales = self.add_weight(
            name="scales", shape=shape, initializer=keras.initializers.RandomNormal(
                mean=1.0, stddev=1 / math.sqrt(feature_size)))

    def call(self, inputs, mask=None, training=None):
        batch = ops.shape(inputs)[0]
        assign = self.assignment(inputs, mask=mask, training=training)  # [B, T, K]
        assign_t = ops.transpose(assign, (0, 2, 1))  # [B, K, T]
        mass = ops.expand_dims(ops.sum(assign, axis=1), -1)  # [B, K, 1]
        first = ops.matmul(assign_t, inputs)  # sum_t a x      [B, K, D]
        second = ops.matmul(assign_t, ops.square(inputs))  # sum_t a x^2    [B, K, D]
        centers = ops.expand_dims(self.centers, 0)
        scales = ops.expand_dims(ops.square(self.scales) + 1e-6, 0)
        fv1 = (first - mass * centers) / scales
        # sum_t a (x - c)^2 = sum a x^2 - 2 c sum a x + c^2 sum a
        fv2 = (second - 2.0 * centers * first + mass * ops.square(centers)) / ops.square(scales)
        fv2 = fv2 - mass
        out = []
        for fv, intra in ((fv1, True), (fv2, self.intra_normalize_second)):
            if intra:
                fv = l2_normalize(fv, axis=-1)
            out.append(l2_normalize(ops.reshape(fv, (batch, -1)), axis=-1))
        return ops.concatenate(out, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.cluster_size * int(input_shape[-1]))

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "intra_normalize_second": self.intra_normalize_second}

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `intra_normalize_second` existed normalised it
        return cls(**{"intra_normalize_second": True, **config})
