"""LSTM: the recurrent baseline of the YT8M starter code (Abu-El-Haija et al. 2016,
arXiv 1609.08675; google/youtube-8m frame_level_models.py `LstmModel`): the frames
of all features concatenated (and L2-normalised, `model.input`), a stacked LSTM over
the valid frames, its final output to the head."""

from dataclasses import dataclass, field

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.config.inputs import InputConfig
from videotag.layers import StackedLSTM
from videotag.models.aggregators import AGGREGATORS
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
    input: InputConfig = field(default_factory=lambda: InputConfig(normalization="l2"))


@dataclass
class LSTMParams:
    """Parameters of the LSTM aggregator: `units` per layer, `num_layers` stacked."""

    units: int = 1024
    num_layers: int = 2

    def validate(self, path: str) -> None:
        """Both must be positive (raises ConfigError naming the key)."""
        engine.check_positive(path, self, ("units", "num_layers"))


@AGGREGATORS.register("LSTM", LSTMParams)
def lstm_aggregator(params: LSTMParams, x, mask, name, index):
    """Stacked masked LSTM, final output: [B, T, D] -> [B, units]."""
    return StackedLSTM(params.units, params.num_layers, name=f"{name}_lstm")(x, mask=mask)


@register_model("LSTM", LSTMConfig)
def build_lstm(cfg) -> keras.Model:
    """Stacked-LSTM video classifier; outputs `tags` and `embedding` (the final state)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    lstm = AGGREGATORS.from_attributes("LSTM", m, "model")
    x = AGGREGATORS.build(lstm, x, mask, "frames", 0)
    return keras.Model(inputs, video_outputs(cfg, x), name="lstm")
