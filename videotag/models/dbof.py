"""DBOF: the deep bag-of-frames baseline of the YT8M starter code (Abu-El-Haija et
al. 2016, arXiv 1609.08675; google/youtube-8m frame_level_models.py `DbofModel`).

The frames of all features are concatenated (and L2-normalised, `model.input`); S
frames are sampled per video; each is batch-normalised, projected to K cluster units
(batch norm, activation) and the video is their max (or mean); a hidden layer (batch
norm, activation) feeds the head.
"""

from dataclasses import dataclass, field

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.config.inputs import InputConfig
from videotag.layers import DBoF, SampleFrames
from videotag.layers.dbof import ACTIVATIONS, POOLINGS
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.layers.sampling import SAMPLINGS
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class DBoFConfig(ModelConfig):
    """DBoF hyper-parameters (defaults: the starter code's flags).

    Attributes:
        cluster_size: K, the cluster units per frame.
        hidden_size: units of the hidden layer.
        sample_frames: S, frames sampled per video; 0 uses every valid frame.
        sampling: how the S frames are drawn in training: "uniform" (independent
            uniform draws, the starter code's `SampleRandomFrames`) or "segments"
            (one random frame per equal segment); in inference always the segment
            middles (the starter code draws at random there too).
        pooling: "max" or "average" over frames.
        activation: of the cluster and hidden units: "sigmoid" (the starter code's
            `dbof_activation` default) or "relu6" (its only activation before 2019).
        input_bn: batch-normalise the frames (over valid frames) first.
    """

    name: str = "DBOF"
    cluster_size: int = 8192
    hidden_size: int = 1024
    sample_frames: int = 30
    sampling: str = "uniform"
    pooling: str = "max"
    activation: str = "sigmoid"
    input_bn: bool = True
    input: InputConfig = field(default_factory=lambda: InputConfig(normalization="l2"))
    batch_norm_momentum: float = 0.999


@dataclass
class DBoFParams:
    """Parameters of the DBOF aggregator (see `DBoFConfig`; later modalities use K/8)."""

    cluster_size: int = 2048
    sample_frames: int = 30
    sampling: str = "segments"
    pooling: str = "max"
    activation: str = "relu6"
    input_bn: bool = True

    def validate(self, path: str) -> None:
        """Known pooling, activation and sampling; K > 0, S >= 0 (raises
        ConfigError naming the key)."""
        engine.check_choice(f"{path}.pooling", self.pooling, POOLINGS)
        engine.check_choice(f"{path}.activation", self.activation, ACTIVATIONS)
        engine.check_choice(f"{path}.sampling", self.sampling, SAMPLINGS)
        engine.check_positive(path, self, ("cluster_size",))
        engine.check_positive(path, self, ("sample_frames",), strict=False)


@AGGREGATORS.register("DBOF", DBoFParams)
def dbof_aggregator(params: DBoFParams, x, mask, name, index):
    """Frame sampling, input BN and DBoF: [B, T, D] -> [B, K_i] (K/8 after index 0)."""
    if params.sample_frames:
        x, mask = SampleFrames(params.sample_frames, mode=params.sampling,
                               name=f"{name}_sample")(x, mask)
    if params.input_bn:
        x = MaskedBatchNormalization(name=f"{name}_input_bn")(x, mask=mask)
    k = params.cluster_size if index == 0 else max(1, params.cluster_size // 8)
    return DBoF(k, pooling=params.pooling, activation=params.activation,
                name=f"{name}_dbof")(x, mask=mask)


@register_model("DBOF", DBoFConfig)
def build_dbof(cfg) -> keras.Model:
    """DBoF video classifier; outputs `tags` and `embedding` (the hidden layer)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    x = AGGREGATORS.build(AGGREGATORS.from_attributes("DBOF", m, "model"), x, mask, "frames", 0)
    x = layers.Dense(m.hidden_size, use_bias=False, name="hidden")(x)
    x = layers.BatchNormalization(name="hidden_bn")(x)
    x = layers.Activation(m.activation, name=f"hidden_{m.activation}")(x)
    return keras.Model(inputs, video_outputs(cfg, x), name="dbof")
