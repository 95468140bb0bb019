"""Context gating of a video vector: LOUPE's Context Gating and NeXtVLAD's SE form."""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="videotag")
class SEContextGating(keras.layers.Layer):
    """`x * sigmoid(dense(relu(bn(dense(x)))))`, the SE context gating of NeXtVLAD.

    A squeeze-and-excitation gate (Lin et al. 2018, section 3.3): a bottleneck of
    `units // reduction` units, then one gate per unit.

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
        self.squeeze = layers.Dense(max(1, units // self.reduction), use_bias=False,
                                    name="squeeze", dtype=self.dtype_policy)
        self.squeeze_bn = layers.BatchNormalization(name="squeeze_bn", dtype=self.dtype_policy)
        self.excite = layers.Dense(units, activation="sigmoid", name="excite",
                                   dtype=self.dtype_policy)
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
class ContextGating(keras.layers.Layer):
    """Context Gating of LOUPE (Miech et al. 2017, eq. 1): `x * sigmoid(x W + b)`.

    One full D x D gate (no squeeze). The paper's formula, with a bias: the authors'
    code puts a batch norm there instead, whose batch statistics drift from its moving
    averages when batches group videos by length (measured on the demo data: NetFV's
    validation GAP swung between 0.44 and 0.70 over epochs, against a steady 0.76
    without it). [B, D] -> [B, D].
    """

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.gate = layers.Dense(units, name="gate", dtype=self.dtype_policy)
        self.gate.build(input_shape)

    def call(self, inputs):
        return inputs * keras.activations.sigmoid(self.gate(inputs))

    @classmethod
    def from_config(cls, config):
        # `.keras` files of videotag 0.1 saved the SE gate under this name; only the
        # SE gate has `reduction`.
        if "reduction" in config:
            return SEContextGating.from_config(config)
        return super().from_config(config)


# videotag 0.1 called LOUPE's gate `LinearGating`: its `.keras` files still load.
keras.saving.get_custom_objects()["videotag>LinearGating"] = ContextGating
