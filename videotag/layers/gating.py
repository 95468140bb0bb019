"""Context gating of a video vector: the SE form of NeXtVLAD and the full form of LOUPE."""

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


@keras.saving.register_keras_serializable(package="videotag")
class LinearGating(keras.layers.Layer):
    """Context Gating of LOUPE (Miech et al. 2017): `x * sigmoid(bn(x W))`.

    One full D x D gate (no squeeze), with batch norm in place of a bias, as in the
    LOUPE models. [B, D] -> [B, D].
    """

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.gate = layers.Dense(units, use_bias=False, name="gate")
        self.gate_bn = layers.BatchNormalization(name="gate_bn")
        self.gate.build(input_shape)
        self.gate_bn.build((None, units))

    def call(self, inputs, training=None):
        gates = self.gate_bn(self.gate(inputs), training=training)
        return inputs * keras.activations.sigmoid(gates)
