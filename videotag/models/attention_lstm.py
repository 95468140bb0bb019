"""ATTENTION_LSTM: per modality a bidirectional LSTM with attention pooling over
time (the Attention-LSTM of PaddleVideo's YT8M models; attention pooling after
Bahdanau et al. 2015)."""

from dataclasses import dataclass, field
from typing import List

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.errors import ConfigError
from videotag.layers import AttentionPooling, BiLSTM
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class AttentionLSTMConfig(ModelConfig):
    """Attention-LSTM hyper-parameters (defaults: PaddleVideo's YT8M configuration).

    Attributes:
        embedding_size: per-frame dense (tanh) before the LSTM.
        lstm_size: cells per direction.
        dropout: dropout on the LSTM outputs.
        fc_sizes: dense layers after the concatenation (relu, the last tanh).
    """

    name: str = "ATTENTION_LSTM"
    embedding_size: int = 512
    lstm_size: int = 1024
    dropout: float = 0.5
    fc_sizes: List[int] = field(default_factory=lambda: [8192, 4096])


@dataclass
class AttentionLSTMParams:
    """Parameters of the ATTENTION_LSTM aggregator (see `AttentionLSTMConfig`)."""

    embedding_size: int = 512
    lstm_size: int = 1024
    dropout: float = 0.5

    def validate(self, path: str) -> None:
        """The sizes must be positive (raises ConfigError naming the key)."""
        engine.check_positive(path, self, ("embedding_size", "lstm_size"))


@AGGREGATORS.register("ATTENTION_LSTM", AttentionLSTMParams)
def attention_lstm_aggregator(params: AttentionLSTMParams, x, mask, name, index):
    """Dense tanh, masked BiLSTM, dropout, attention pooling: [B, T, D] -> [B, 2*lstm]."""
    x = layers.Dense(params.embedding_size, activation="tanh", name=f"{name}_embed")(x)
    x = BiLSTM(params.lstm_size, name=f"{name}_bilstm")(x, mask=mask)
    if params.dropout:
        x = layers.Dropout(params.dropout, name=f"{name}_dropout")(x)
    return AttentionPooling(name=f"{name}_attention")(x, mask=mask)


@register_model("ATTENTION_LSTM", AttentionLSTMConfig)
def build_attention_lstm(cfg) -> keras.Model:
    """Attention-LSTM video classifier; outputs `tags` and `embedding` (last dense)."""
    m = cfg.model
    if not m.fc_sizes:
        raise ConfigError("config key 'model.fc_sizes' needs at least one size")
    inputs, frames, mask = frame_inputs(cfg)
    pooling = AGGREGATORS.from_attributes("ATTENTION_LSTM", m, "model")
    pooled = [AGGREGATORS.build(pooling, x, mask, name, i)
              for i, (name, x) in enumerate(zip(cfg.data.feature_names, frames))]
    x = layers.Concatenate(name="concat")(pooled) if len(pooled) > 1 else pooled[0]
    for i, units in enumerate(m.fc_sizes):
        last = i == len(m.fc_sizes) - 1
        x = layers.Dense(units, activation="tanh" if last else "relu", name=f"fc_{i}")(x)
    return keras.Model(inputs, video_outputs(cfg, x), name="attention_lstm")
