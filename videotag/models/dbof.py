"""DBOF: the deep bag-of-frames baseline of the YT8M starter code (Abu-El-Haija et
al. 2016, arXiv 1609.08675).

The frames of all features are concatenated; S frames are sampled per video; each
is batch-normalised, projected to K cluster units (batch norm, relu6) and the video
is their max (or mean); a hidden layer (batch norm, relu6) feeds the head.
"""

from dataclasses import dataclass

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.layers import DBoF, SampleFrames
from videotag.layers.dbof import POOLINGS
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class DBoFConfig(ModelConfig):
    """DBoF hyper-parameters (defaults: the starter code's).

    Attributes:
        cluster_size: K, the cluster units per frame.
        hidden_size: units of the hidden layer.
        sample_frames: S, frames sampled per video (one per equal segment: random
            in training, the middle in inference); 0 uses every valid frame.
        pooling: "max" or "average" over frames.
        input_bn: batch-normalise the frames (over valid frames) first.
    """

    name: str = "DBOF"
    cluster_size: int = 8192
    hidden_size: int = 1024
    sample_frames: int = 30
    pooling: str = "max"
    input_bn: bool = True


@dataclass
class DBoFParams:
    """Parameters of the DBOF aggregator (see `DBoFConfig`; later modalities use K/8)."""

    cluster_size: int = 2048
    sample_frames: int = 30
    pooling: str = "max"
    input_bn: bool = True

    def validate(self, path: str) -> None:
        """Known pooling, K > 0, S >= 0 (raises ConfigError naming the key)."""
        engine.check_choice(f"{path}.pooling", self.pooling, POOLINGS)
        engine.check_positive(path, self, ("cluster_size",))
        engine.check_positive(path, self, ("sample_frames",), strict=False)


@AGGREGATORS.register("DBOF", DBoFParams)
def dbof_aggregator(params: DBoFParams, x, mask, name, index):
    """Frame sampling, input BN and DBoF: [B, T, D] -> [B, K_i] (K/8 after index 0)."""
    if params.sample_frames:
        x, mask = SampleFrames(params.sample_frames, name=f"{name}_sample")(x, mask)
    if params.input_bn:
        x = MaskedBatchNormalization(name=f"{name}_input_bn")(x, mask=mask)
    k = params.cluster_size if index == 0 else max(1, params.cluster_size // 8)
    return DBoF(k, pooling=params.pooling, name=f"{name}_dbof")(x, mask=mask)


@register_model("DBOF", DBoFConfig)
def build_dbof(cfg) -> keras.Model:
    """DBoF video classifier; outputs `tags` and `embedding` (the hidden layer)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    x = layers.Concatenate(axis=-1, name="concat_frames")(frames) if len(frames) > 1 else frames[0]
    x = AGGREGATORS.build(AGGREGATORS.from_attributes("DBOF", m, "model"), x, mask, "frames", 0)
    x = layers.Dense(m.hidden_size, use_bias=False, name="hidden")(x)
    x = layers.BatchNormalization(name="hidden_bn")(x)
    x = layers.Activation("relu6", name="hidden_relu6")(x)
    return keras.Model(inputs, video_outputs(cfg, x), name="dbof")
