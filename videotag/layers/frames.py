"""Frame-input layers: dequantization of uint8 features, the frame mask and the
input normalisation of reference models."""

import keras
from keras import ops

from videotag.config.inputs import NORMALIZATIONS
from videotag.data import schema

# the NeXtVLAD authors subtract 4/512 (the dequantization's half step) from rgb
EIGENVALUE_OFFSET = 4.0 / 512


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


@keras.saving.register_keras_serializable(package="videotag")
class FrameNormalization(keras.layers.Layer):
    """The input normalisation of a reference model, frame by frame.

    - "l2": every frame of all features together is divided by the L2 norm of their
      concatenation, `x_f / max(||[x_1, ..., x_F]||, 1e-6)` (the YT8M starter code
      and LOUPE: `tf.nn.l2_normalize` of the concatenated rgb+audio frame);
    - "eigenvalues": the first feature becomes `(x - 4/512) * scale` with `scale`
      the per-dimension `sqrt(eigenvalue) + 1e-4` (the NeXtVLAD authors: undoes
      the PCA whitening of YT8M's rgb); the other features are unchanged;
    - "none": the features as they are.
    Each frame is normalised on its own, so padding changes nothing.

    Args:
        mode: "none", "l2" or "eigenvalues".
        scale: for "eigenvalues": the factors of the first feature (a list of
            `feature_size` floats; stored in the layer's config, not as weights).
    Call args:
        inputs: a list of float frames [B, T, D_f], one per feature.
    Returns:
        The list of normalised frames, of the same shapes.
    """

    def __init__(self, mode="l2", scale=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(f"FrameNormalization mode is '{mode}'; valid: "
                             f"{', '.join(NORMALIZATIONS)}")
        if mode == "eigenvalues" and not scale:
            raise ValueError("FrameNormalization mode 'eigenvalues' needs `scale`")
        self.mode = mode
        self.scale = [float(s) for s in scale] if scale else None

    def build(self, input_shape):
        if self.mode == "eigenvalues" and int(input_shape[0][-1]) != len(self.scale):
            raise ValueError(f"FrameNormalization has {len(self.scale)} factors for a first "
                             f"feature of size {int(input_shape[0][-1])}")

    def call(self, inputs):
        inputs = list(inputs)
        if self.mode == "l2":
            squares = sum(ops.sum(ops.square(x), axis=-1, keepdims=True) for x in inputs)
            inverse = ops.rsqrt(ops.maximum(squares, 1e-12))
            return [x * inverse for x in inputs]
        if self.mode == "eigenvalues":
            scale = ops.convert_to_tensor(self.scale, dtype=inputs[0].dtype)
            first = (inputs[0] - EIGENVALUE_OFFSET) * scale
            return [first, *inputs[1:]]
        return inputs

    def compute_output_shape(self, input_shape):
        return [tuple(s) for s in input_shape]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "scale": self.scale}
