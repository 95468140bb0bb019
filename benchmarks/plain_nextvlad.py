"""A plain Keras NeXtVLAD: the same network as videotag's NEXTVLAD, written the
straightforward way (stock layers, float32 inputs, no masking), as the baseline of
`nextvlad_throughput.py`. Built from the paper's description (arXiv 1811.05014)."""

import keras
from keras import layers, ops


class PlainNeXtVLAD(layers.Layer):
    def __init__(self, cluster_size, groups, expansion, **kwargs):
        super().__init__(**kwargs)
        self.k, self.g, self.lam = cluster_size, groups, expansion

    def build(self, shape):
        n = shape[-1]
        self.d = self.lam * n // self.g
        self.expand = layers.Dense(self.lam * n, name="expand")
        self.att = layers.Dense(self.g, activation="sigmoid", name="group_attention")
        self.assign = layers.Dense(self.g * self.k, use_bias=False, name="cluster_assign")
        self.bn = layers.BatchNormalization(name="cluster_assign_bn")
        self.centers = self.add_weight(shape=(1, self.d, self.k), initializer="random_normal")

    def call(self, x, training=None):
        t = ops.shape(x)[1]
        x = self.expand(x)
        att = ops.reshape(self.att(x), (-1, t * self.g, 1))
        a = ops.reshape(self.bn(self.assign(x), training=training), (-1, t * self.g, self.k))
        a = ops.softmax(a, axis=-1) * att
        a_sum = ops.sum(a, axis=1, keepdims=True)  # [B, 1, K]
        xg = ops.reshape(x, (-1, t * self.g, self.d))
        vlad = ops.transpose(ops.matmul(ops.transpose(a, (0, 2, 1)), xg), (0, 2, 1))
        vlad = vlad - a_sum * self.centers
        vlad = vlad / ops.sqrt(ops.maximum(ops.sum(vlad**2, axis=1, keepdims=True), 1e-12))
        return ops.reshape(vlad, (-1, self.k * self.d))


def build_plain(num_classes, cluster_size=128, groups=8, expansion=2, hidden=2048, r=8,
                dropout=0.5, rgb=1024, audio=128):
    rgb_in = keras.Input((None, rgb), name="rgb")
    audio_in = keras.Input((None, audio), name="audio")
    # layer names as in videotag's NEXTVLAD, for nextvlad_profile.py's op groups
    v1 = layers.BatchNormalization(name="vlad_bn_rgb")(
        PlainNeXtVLAD(cluster_size, groups, expansion, name="nextvlad_rgb")(rgb_in))
    v2 = layers.BatchNormalization(name="vlad_bn_audio")(
        PlainNeXtVLAD(cluster_size // 2, groups // 2, expansion, name="nextvlad_audio")(audio_in))
    x = layers.Dropout(dropout, name="dropout")(layers.Concatenate(name="concat")([v1, v2]))
    x = layers.BatchNormalization(name="hidden_bn")(
        layers.Dense(hidden, use_bias=False, name="hidden")(x))
    g = layers.Activation("relu", name="squeeze_relu")(layers.BatchNormalization(
        name="squeeze_bn")(layers.Dense(hidden // r, use_bias=False, name="squeeze")(x)))
    x = layers.Multiply(name="gating")(
        [x, layers.Dense(hidden, activation="sigmoid", name="excite")(g)])
    out = layers.Dense(num_classes, activation="sigmoid", name="logits")(x)
    return keras.Model({"rgb": rgb_in, "audio": audio_in}, out)
