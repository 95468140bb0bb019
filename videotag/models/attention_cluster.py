"""ATTENTION_CLUSTER: attention clusters with the shifting operation per modality
(Long et al., "Attention Clusters: Purely Attention Based Local Feature Integration
for Video Classification", CVPR 2018, arXiv 1711.09550), as PaddlePaddle's YT8M
implementation builds it (PaddlePaddle/models PaddleCV/video/models/
attention_cluster: `AttentionCluster.build_model`, `ShiftingAttentionModel`)."""

from dataclasses import dataclass, field
from typing import List

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.layers import AttentionClusters, SampleFrames
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class AttentionClusterConfig(ModelConfig):
    """Attention-cluster hyper-parameters (defaults: PaddlePaddle's YT8M
    configuration: 100 sampled frames, 32 units per modality, two tanh dense layers).

    Attributes:
        sample_frames: S, frames taken per video, one per equal segment (random in
            training, the middle in inference; their reader's `seg_num: 100`); 0
            attends over every valid frame.
        num_clusters: C, attention units per modality.
        dropout: dropout rate on the concatenated clusters.
        fc_sizes: tanh dense layers before the head.
    """

    name: str = "ATTENTION_CLUSTER"
    sample_frames: int = 100
    num_clusters: int = 32
    dropout: float = 0.5
    fc_sizes: List[int] = field(default_factory=lambda: [1024, 4096])

    def validate(self, path: str = "model") -> None:
        """S must not be negative (raises ConfigError naming the key)."""
        super().validate(path)
        engine.check_positive(path, self, ("sample_frames",), strict=False)


@dataclass
class AttentionClusterParams:
    """Parameters of the ATTENTION_CLUSTER aggregator: `num_clusters`, C."""

    num_clusters: int = 32

    def validate(self, path: str) -> None:
        """C must be positive (raises ConfigError naming the key)."""
        engine.check_positive(path, self, ("num_clusters",))


@AGGREGATORS.register("ATTENTION_CLUSTER", AttentionClusterParams)
def attention_cluster_aggregator(params: AttentionClusterParams, x, mask, name, index):
    """C shifted attention units: [B, T, D] -> [B, C*D]."""
    return AttentionClusters(params.num_clusters, name=f"{name}_clusters")(x, mask=mask)


@register_model("ATTENTION_CLUSTER", AttentionClusterConfig)
def build_attention_cluster(cfg) -> keras.Model:
    """Attention-cluster video classifier; outputs `tags` and `embedding` (last dense)."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    if m.sample_frames:  # the same frames of every feature
        frames, mask = SampleFrames(m.sample_frames, seed=cfg.train.seed, mode="segments",
                                    name="sample_frames")(frames, mask)
    clusters = AGGREGATORS.from_attributes("ATTENTION_CLUSTER", m, "model")
    pooled = [AGGREGATORS.build(clusters, x, mask, name, i)
              for i, (name, x) in enumerate(zip(cfg.data.feature_names, frames))]
    x = layers.Concatenate(name="concat")(pooled) if len(pooled) > 1 else pooled[0]
    if m.dropout:
        x = layers.Dropout(m.dropout, name="dropout")(x)
    for i, units in enumerate(m.fc_sizes):
        x = layers.Dense(units, activation="tanh", name=f"fc_{i}")(x)
    return keras.Model(inputs, video_outputs(cfg, x), name="attention_cluster")
