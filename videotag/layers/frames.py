"""Frame-input layers: dequantization of uint8 features and the frame mask."""

import keras
from keras import ops

from videotag.data import schema


@keras.saving.register_keras_serializable(package="videotag")
class Dequantize(keras.layers.Layer):
    """uint8 YT8M codes -> float features: `q * 4/255 + 4/512 - 2`.

    Runs inside the model so tf.data moves bytes, not floats, and a served model
    takes the records' bytes as they are.
    """

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        return x * schema.SCALE + schema.BIAS


@keras.saving.register_keras_serializable(package="videotag")
class FrameMask(keras.layers.Layer):
    """Boolean mask [B, T] of the valid frames, from `num_frames` [B] and frames [B, T, D]."""

    def call(self, frames, num_frames):
        steps = ops.shape(frames)[1]
        positions = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)
        return positions < ops.expand_dims(ops.cast(num_frames, "int32"), 1)
