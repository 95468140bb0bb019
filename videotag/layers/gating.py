"""SE context gating (squeeze-and-excitation on a video vector)."""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="videotag")
class ContextGating(keras.layers.Layer):
    """`x * sigmoid(dense(relu(bn(dense(x)))))`, the gate of NeXtVLAD.

    Args:
        reduction: the squeeze dense has `units // reduction` units.
    Shapes:
        [B, D] -> [B, D].
    """

    def __init__(self, reduction=8, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.squeeze = layers.Dense(max(1, units // self.reduction), use_bias=False, name="squeeze")
        self.squeeze_bn = layers.BatchNormalization(name="squeeze_bn")
        self.excite = layers.Dense(units, activation="sigmoid", name="excite")
        self.squeeze.build(input_shape)
        self.squeeze_bn.build((None, max(1, units // self.reduction)))
        self.excite.build((None, max(1, units // self.reduction)))

    def call(self, inputs, training=None):
        gates = self.squeeze(inputs)
        gates = keras.activations.relu(self.squeeze_bn(gates, training=training))
        return inputs * self.excite(gates)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}
