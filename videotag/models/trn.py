"""TRN: multi-scale temporal relation network (Zhou et al., "Temporal Relational
Reasoning in Videos", ECCV 2018, arXiv 1711.08496), over the frames of all features
concatenated."""

from dataclasses import dataclass

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.errors import ConfigError
from videotag.layers import TemporalRelation
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class TRNConfig(ModelConfig):
    """TRN hyper-parameters (defaults: the paper's multi-scale TRN).

    Attributes:
        segments: n, ordered frames sampled per video (scales n..2).
        subsample: k-frame tuples used per scale below n.
        frame_size: per-frame projection before the relations (0: none).
        bottleneck: units of each scale's g MLP.
        hidden_size: units of each scale's h MLP: the video vector.
    """

    name: str = "TRN"
    segments: int = 8
    subsample: int = 3
    frame_size: int = 256
    bottleneck: int = 256
    hidden_size: int = 1024


@dataclass
class TRNParams:
    """Parameters of the TRN aggregator (see `TRNConfig`)."""

    segments: int = 8
    subsample: int = 3
    frame_size: int = 256
    bottleneck: int = 256
    hidden_size: int = 1024

    def validate(self, path: str) -> None:
        """At least 2 segments; positive sizes (raises ConfigError naming the key)."""
        if self.segments < 2:
            raise ConfigError(f"config key '{path}.segments' must be at least 2, "
                              f"got {self.segments}")
        engine.check_positive(path, self, ("subsample", "bottleneck", "hidden_size"))
        engine.check_positive(path, self, ("frame_size",), strict=False)


@AGGREGATORS.register("TRN", TRNParams)
def trn_aggregator(params: TRNParams, x, mask, name, index):
    """Multi-scale temporal relations: [B, T, D] -> [B, hidden_size]."""
    return TemporalRelation(
        segments=params.segments, subsample=params.subsample, frame_size=params.frame_size,
        bottleneck=params.bottleneck, hidden_size=params.hidden_size,
        name=f"{name}_trn")(x, mask=mask)


@register_model("TRN", TRNConfig)
def build_trn(cfg) -> keras.Model:
    """TRN video classifier; outputs `tags` and `embedding` (the sum over scales)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    x = AGGREGATORS.build(AGGREGATORS.from_attributes("TRN", m, "model"), x, mask, "frames", 0)
    return keras.Model(inputs, video_outputs(cfg, x), name="trn")
