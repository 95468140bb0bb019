"""TRN: multi-scale temporal relation network (Zhou et al., "Temporal Relational
Reasoning in Videos", ECCV 2018, arXiv 1711.08496; the authors' TRN-pytorch,
TRNmodule.py `RelationModuleMultiScale` behind models.py `TSN`), over the frames of
all features concatenated."""

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
class TRNParams:
    """Parameters of the TRN aggregator (see `TemporalRelation`).

    Attributes:
        segments: n, ordered frames sampled per video (scales n..2).
        subsample: k-frame tuples used per scale below n.
        frame_size: per-frame projection before the relations (0: none).
        bottleneck: units of each scale's g MLP.
        hidden_size: 0: the video vector is the concatenation of the scales' summed
            g outputs (the authors' per-scale last layer, linear to the classes, is
            then the head); > 0: each scale's h MLP (ReLU) of this size, summed.
        dropout: dropout on the sampled frames before the projection (the
            authors' `--dropout 0.8` on the backbone features).
        input_relu: ReLU on the projected frames, the first layer of the authors'
            per-scale MLP.
    """

    segments: int = 8
    subsample: int = 3
    frame_size: int = 256
    bottleneck: int = 256
    hidden_size: int = 0
    dropout: float = 0.8
    input_relu: bool = True

    def validate(self, path: str) -> None:
        """At least 2 segments; positive sizes (raises ConfigError naming the key)."""
        if self.segments < 2:
            raise ConfigError(f"config key '{path}.segments' must be at least 2, "
                              f"got {self.segments}")
        engine.check_positive(path, self, ("subsample", "bottleneck"))
        engine.check_positive(path, self, ("frame_size", "hidden_size"), strict=False)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"config key '{path}.dropout' must be in [0, 1)")


@dataclass
class TRNConfig(ModelConfig, TRNParams):
    """TRN hyper-parameters (defaults: the authors' multi-scale TRN, 8 segments,
    `img_feature_dim` 256, bottleneck 256, 3 tuples per scale, dropout 0.8); see
    `TRNParams`."""

    name: str = "TRN"

    def validate(self, path: str = "model") -> None:
        """The rules of `ModelConfig` and `TRNParams`."""
        ModelConfig.validate(self, path)
        TRNParams.validate(self, path)


@AGGREGATORS.register("TRN", TRNParams)
def trn_aggregator(params: TRNParams, x, mask, name, index):
    """Multi-scale temporal relations: [B, T, D] -> [B, output size]."""
    return TemporalRelation(
        segments=params.segments, subsample=params.subsample, frame_size=params.frame_size,
        bottleneck=params.bottleneck, hidden_size=params.hidden_size, dropout=params.dropout,
        input_relu=params.input_relu, name=f"{name}_trn")(x, mask=mask)


@register_model("TRN", TRNConfig)
def build_trn(cfg) -> keras.Model:
    """TRN video classifier; outputs `tags` and `embedding` (the relation vector)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    x = AGGREGATORS.build(AGGREGATORS.from_attributes("TRN", m, "model"), x, mask, "frames", 0)
    return keras.Model(inputs, video_outputs(cfg, x), name="trn")
