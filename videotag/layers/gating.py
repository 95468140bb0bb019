"""Context gating of a video vector: LOUPE's Context Gating and NeXtVLAD's SE form."""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="videotag")
class SEContextGating(keras.layers.Layer):
    """`x * sigmoid(relu(bn(x W1)) W2)`, the SE context gating of NeXtVLAD.

    A squeeze-and-excitation gate (Lin et al. 2018, section 3.3): a bottleneck of
    `units // reduction` units, then one gate per unit. As in the NeXtVLAD authors'
    code (`gating_weights_1`, `gating_bn`, `gating_weights_2`) neither dense has a
    bias; `excite_bias` adds one to the second.

    Args:
        reduction: the squeeze dense has `units // reduction` units.
        excite_bias: a bias in the excitation dense (videotag 0.1 had one; its
            `.keras` files load with it).
    Shapes:
        [B, D] -> [B, D].
    """

    def __init__(self, reduction=8, excite_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        self.excite_bias = bool(excite_bias)

    def build(self, input_shape):
        units = int(input_shape[-1])
        squeezed = max(1, units // self.reduction)
        self.squeeze = layers.Dense(squeezed, use_bias=False, name="squeeze",
                                    dtype=self.dtype_policy)
        self.squeeze_bn = layers.BatchNormalization(name="squeeze_bn", dtype=self.dtype_policy)
        self.excite = layers.Dense(units, activation="sigmoid", use_bias=self.excite_bias,
                                   name="excite", dtype=self.dtype_policy)
        self.squeeze.build(input_shape)
        self.squeeze_bn.build((None, squeezed))
        self.excite.build((None, squeezed))

    def call(self, inputs, training=None):
        gates = self.squeeze(inputs)
        gates = keras.activations.relu(self.squeeze_bn(gates, training=training))
        return inputs * self.excite(gates)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction,
                "excite_bias": self.excite_bias}

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `excite_bias` existed have the bias
        return cls(**{"excite_bias": True, **config})


@keras.saving.register_keras_serializable(package="videotag")
class ContextGating(keras.layers.Layer):
    """Context Gating of LOUPE (Miech et al. 2017): `x * sigmoid(BN(x W))`.

    One full D x D gate (no squeeze). With `batch_norm` (the default) it is the
    authors' code (`context_gating` of LOUPE's loupe.py and of their YT8M code:
    `gating_weights`, then `gating_bn`); without it the paper's formula (eq. 1)
    `x * sigmoid(x W + b)`. The batch norm's statistics come from the batch in
    training: when batches group videos by length (`data.length_buckets`) they
    drift from its moving averages, and on the demo data NetFV's validation GAP
    swung between 0.44 and 0.70 over the epochs with it, against a steady 0.76
    with the bias. [B, D] -> [B, D].

    Args:
        batch_norm: batch norm (the authors' code) instead of a bias (the paper).
    """

    def __init__(self, batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.batch_norm = bool(batch_norm)

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.gate = layers.Dense(units, use_bias=not self.batch_norm, name="gate",
                                 dtype=self.dtype_policy)
        self.gate.build(input_shape)
        self.gate_bn = None
        if self.batch_norm:
            self.gate_bn = layers.BatchNormalization(name="gate_bn", dtype=self.dtype_policy)
            self.gate_bn.build((None, units))

    def call(self, inputs, training=None):
        gates = self.gate(inputs)
        if self.gate_bn is not None:
            gates = self.gate_bn(gates, training=training)
        return inputs * keras.activations.sigmoid(gates)

    def get_config(self):
        return {**super().get_config(), "batch_norm": self.batch_norm}

    @classmethod
    def from_config(cls, config):
        # `.keras` files of videotag 0.1 saved the SE gate under this name; only the
        # SE gate has `reduction`.
        if "reduction" in config:
            return SEContextGating.from_config(config)
        # files saved before `batch_norm` existed have the bias
        return cls(**{"batch_norm": False, **config})


# videotag 0.1 called LOUPE's gate `LinearGating`: its `.keras` files still load.
keras.saving.get_custom_objects()["videotag>LinearGating"] = ContextGating
