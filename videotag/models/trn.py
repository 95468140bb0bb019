"""TRN: multi-scale temporal relation network (Zhou et al., "Temporal Relational
Reasoning in Videos", ECCV 2018, arXiv 1711.08496), over the frames of all features
concatenated."""

from dataclasses import dataclass

import keras
from keras import layers

from videotag.config import ModelConfig
from videotag.errors import ConfigError
from videotag.layers import TemporalRelation
from videotag.models.aggregators import build_aggregator, register_aggregator
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


_DEFAULTS = {"segments": 8, "subsample": 3, "frame_size": 256, "bottleneck": 256,
             "hidden_size": 1024}


@register_aggregator("TRN", _DEFAULTS)
def trn_aggregator(x, mask, params, name, index):
    """Multi-scale temporal relations: [B, T, D] -> [B, hidden_size]."""
    if params["segments"] < 2:
        raise ConfigError(f"TRN segments must be at least 2, got {params['segments']}")
    if min(params["subsample"], params["bottleneck"], params["hidden_size"]) <= 0:
        raise ConfigError("TRN subsample, bottleneck and hidden_size must be positive")
    return TemporalRelation(
        segments=params["segments"], subsample=params["subsample"],
        frame_size=params["frame_size"], bottleneck=params["bottleneck"],
        hidden_size=params["hidden_size"], name=f"{name}_trn")(x, mask=mask)


@register_model("TRN", TRNConfig)
def build_trn(cfg) -> keras.Model:
    """TRN video classifier; outputs `tags` and `embedding` (the sum over scales)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    params = {k: getattr(m, k) for k in _DEFAULTS}
    x = build_aggregator("TRN", x, mask, params, name="frames", where="model")
    return keras.Model(inputs, video_outputs(cfg, x), name="trn")
