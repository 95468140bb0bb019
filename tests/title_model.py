"""A small hand-built model with a `title` string input, for the export tests.

No registered model reads titles in this branch; this one follows the model
conventions (inputs rgb/audio uint8, num_frames, title; outputs category and
embedding) so the exporter's title path is exercised: the title's length in
characters is one of the embedding's features, so a wrong or lost title changes the
outputs.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from videotag.data import schema
from videotag.layers import CategoryHead, Dequantize, FrameMask


@keras.saving.register_keras_serializable(package="videotag_tests")
class MaskedMean(layers.Layer):
    """Mean of the valid frames: [B, T, D] and mask [B, T] -> [B, D]."""

    def call(self, frames, mask):
        weights = ops.cast(ops.expand_dims(mask, -1), frames.dtype)
        return ops.sum(frames * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="videotag_tests")
class TitleLength(layers.Layer):
    """Title length in Unicode characters / 10, [B] string -> [B, 1] float."""

    def call(self, title):
        length = tf.strings.length(title, unit="UTF8_CHAR")
        return ops.expand_dims(ops.cast(length, "float32") / 10.0, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


def build_title_model(cfg) -> keras.Model:
    """Category-only model over mean frames and the title length (cfg: num_categories)."""
    data = cfg.data
    inputs = {n: keras.Input((None, s), dtype="uint8", name=n)
              for n, s in zip(data.feature_names, data.feature_sizes)}
    inputs[schema.NUM_FRAMES_KEY] = keras.Input((), dtype="int32", name=schema.NUM_FRAMES_KEY)
    inputs[schema.TITLE_KEY] = keras.Input((), dtype="string", name=schema.TITLE_KEY)
    frames = [Dequantize(name=f"dequantize_{n}")(inputs[n]) for n in data.feature_names]
    mask = FrameMask(name="frame_mask")(frames[0], inputs[schema.NUM_FRAMES_KEY])
    pooled = [MaskedMean(name=f"mean_{n}")(f, mask) for n, f in zip(data.feature_names, frames)]
    title = TitleLength(name="title_length")(inputs[schema.TITLE_KEY])
    x = layers.Concatenate(name="concat")(pooled + [title])
    embedding = layers.Dense(8, activation="tanh", name="hidden")(x)
    outputs = {
        "category": CategoryHead(data.num_categories, name="category")(embedding),
        "embedding": layers.Identity(name="embedding")(embedding),
    }
    return keras.Model(inputs, outputs, name="titled")
