"""Masked recurrent encoders over frames: a stacked LSTM (final state) and a
bidirectional LSTM (per-frame outputs).

Videos are padded at the end, and a masked LSTM holds its state over masked steps,
so the final state is the state after the last valid frame and padding never
changes it; the backward direction starts at each video's last valid frame.
"""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="videotag")
class StackedLSTM(keras.layers.Layer):
    """`num_layers` LSTMs of `units`; returns the top layer's final output h.
    [B, T, D] -> [B, units].

    Args:
        units: cells per layer.
        num_layers: stacked layers.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, units=1024, num_layers=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.supports_masking = True
        self.lstms = [
            layers.LSTM(units, return_sequences=i < num_layers - 1, name=f"lstm_{i}",
                        dtype=self.dtype_policy)
            for i in range(num_layers)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for lstm in self.lstms:
            lstm.build(shape)
            shape = (shape[0], shape[1], self.units)

    def call(self, inputs, mask=None, training=None):
        x = inputs
        for lstm in self.lstms:
            x = lstm(x, mask=mask, training=training)
        return x

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers}


@keras.saving.register_keras_serializable(package="videotag")
class BiLSTM(keras.layers.Layer):
    """A bidirectional LSTM; per-frame outputs, forward and backward concatenated.
    [B, T, D] -> [B, T, 2 * units] (the outputs on padded frames are zero).

    Args:
        units: cells per direction.
    Call args:
        inputs: float frames [B, T, D].
        mask: optional bool [B, T], True for valid frames.
    """

    def __init__(self, units=1024, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True
        self.lstm = layers.Bidirectional(
            layers.LSTM(units, return_sequences=True, zero_output_for_mask=True, name="lstm",
                        dtype=self.dtype_policy),
            name="bidirectional", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.lstm.build(tuple(input_shape))

    def call(self, inputs, mask=None, training=None):
        return self.lstm(inputs, mask=mask, training=training)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], 2 * self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
