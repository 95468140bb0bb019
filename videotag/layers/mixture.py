"""A mixture of classifiers mixed in logit space by per-video weights, as in the
NeXtVLAD authors' `MixNeXtVladModel` (linrongc/youtube-8m, nextvlad.py).

`MixtureWeights` gives each video its weights over M members from its mean frame;
`LogitMixture` mixes the members' class logits with them. The members and their
classifiers are ordinary layers of the model around them.
"""

import keras
from keras import initializers, layers, ops


@keras.saving.register_keras_serializable(package="videotag")
class MixtureWeights(keras.layers.Layer):
    """Per-video weights over M members: `softmax(dense(bn(mean frame)))`.

    The authors' `MixNeXtVladModel` takes `reduce_mean(model_input, axis=1)` over
    the 300 frame slots of its input, where the reader has padded every video with
    zero frames: the mean of a video of n frames is the sum of its frames divided by
    300. Here the sum runs over the valid frames (the mask) and is divided by
    `slots`, so the weights are the authors' and do not depend on the padding of a
    batch. Then batch norm (`mix_weights_bn`), a dense layer with bias
    (`mix_weights`, slim's variance-scaling initialisation) and a softmax.

    Args:
        num_members: M.
        slots: the frame slots of the mean (`data.max_frames`; the authors' 300).
            A video longer than that is divided by its own length.
    Call args:
        frames: float frames [B, T, D] (the authors' input holds rgb and audio side
            by side: concatenate them on the last axis).
        mask: bool [B, T], True on valid frames.
    Shapes:
        -> [B, M] float32, each row summing to 1.
    """

    def __init__(self, num_members=3, slots=300, **kwargs):
        super().__init__(**kwargs)
        self.num_members = int(num_members)
        self.slots = int(slots)
        self.supports_masking = True
        self.bn = layers.BatchNormalization(name="mix_weights_bn", dtype=self.dtype_policy)
        self.dense = layers.Dense(
            self.num_members, name="mix_weights", dtype=self.dtype_policy,
            kernel_initializer=initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"))

    def build(self, frames_shape, mask_shape=None):
        width = int(frames_shape[-1])
        self.bn.build((None, width))
        self.dense.build((None, width))

    def call(self, frames, mask, training=None):
        x = ops.cast(frames, "float32")
        valid = ops.cast(mask, "float32")
        total = ops.sum(x * ops.expand_dims(valid, -1), axis=1)
        count = ops.maximum(ops.sum(valid, axis=1, keepdims=True), float(self.slots))
        mean = ops.cast(total / count, self.compute_dtype)
        logits = self.dense(self.bn(mean, training=training))
        return ops.softmax(ops.cast(logits, "float32"), axis=-1)

    def compute_mask(self, frames, mask=None):
        return None

    def compute_output_shape(self, frames_shape, mask_shape=None):
        return (frames_shape[0], self.num_members)

    def get_config(self):
        return {**super().get_config(), "num_members": self.num_members, "slots": self.slots}


@keras.saving.register_keras_serializable(package="videotag")
class LogitMixture(keras.layers.Layer):
    """Mixes M members' class logits with per-video weights: `z = sum_m w_m z_m`.

    Call args:
        member_logits: a list of M float logits [B, C].
        member_vectors: a list of M float vectors [B, H_m], the inputs of the
            members' classifiers.
        weights: float [B, M] (`MixtureWeights`).
    Returns:
        (probabilities `sigmoid(z)` [B, C] float32, mixture logits z [B, C]
        float32, member logits [B, M, C] float32, embedding [B, sum H_m]: the
        member vectors each scaled by its weight and concatenated, the vector of
        which z is a linear function (`z = [w_1 h_1, ..., w_M h_M] W + sum_m w_m b_m`
        for logistic members `z_m = h_m W_m + b_m`).)
    """

    def call(self, member_logits, member_vectors, weights):
        weights = ops.cast(weights, "float32")
        stacked = ops.stack([ops.cast(z, "float32") for z in member_logits], axis=1)
        mixed = ops.sum(ops.expand_dims(weights, -1) * stacked, axis=1)
        scaled = [h * ops.cast(weights[:, i:i + 1], h.dtype)
                  for i, h in enumerate(member_vectors)]
        embedding = ops.concatenate(scaled, axis=-1) if len(scaled) > 1 else scaled[0]
        return ops.sigmoid(mixed), mixed, stacked, embedding

    def compute_output_shape(self, member_logits_shape, member_vectors_shape, weights_shape):
        batch, classes = member_logits_shape[0]
        width = sum(int(shape[-1]) for shape in member_vectors_shape)
        return ((batch, classes), (batch, classes), (batch, len(member_logits_shape), classes),
                (batch, width))
