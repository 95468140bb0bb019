"""LSTM: the recurrent baseline of the YT8M starter code (Abu-El-Haija et al. 2016,
arXiv 1609.08675): the frames of all features concatenated, a stacked LSTM over the
valid frames, its final output to the head."""

from dataclasses import dataclass

import keras
from keras import layers

from videotag.config import ModelConfig
from videotag.errors import ConfigError
from videotag.layers import StackedLSTM
from videotag.models.aggregators import build_aggregator, register_aggregator
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class LSTMConfig(ModelConfig):
    """LSTM hyper-parameters (defaults: the starter code's).

    Attributes:
        units: cells per layer.
        num_layers: stacked layers.
    """

    name: str = "LSTM"
    units: int = 1024
    num_layers: int = 2


@register_aggregator("LSTM", {"units": 1024, "num_layers": 2})
def lstm_aggregator(x, mask, params, name, index):
    """Stacked masked LSTM, final output: [B, T, D] -> [B, units]."""
    if params["units"] <= 0 or params["num_layers"] <= 0:
        raise ConfigError("LSTM units and num_layers must be positive")
    return StackedLSTM(params["units"], params["num_layers"], name=f"{name}_lstm")(x, mask=mask)


@register_model("LSTM", LSTMConfig)
def build_lstm(cfg) -> keras.Model:
    """Stacked-LSTM video classifier; outputs `tags` and `embedding` (the final state)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    x = build_aggregator("LSTM", x, mask, {"units": m.units, "num_layers": m.num_layers},
                         name="frames", where="model")
    return keras.Model(inputs, video_outputs(cfg, x), name="lstm")
