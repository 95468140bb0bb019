"""The LOUPE family (Miech et al. 2017, "Learnable pooling with Context Gating for
video classification", arXiv 1706.06905; first in the 2017 YT8M challenge).

Shared by NETVLAD, NETRVLAD, NETFV and SOFTDBOF, as in the authors' YT8M code
(antoine77340/Youtube-8M-WILLOW, frame_level_models.py: `NetVLADModelLF`,
`NetFVModelLF`, `GatedDbofModelLF`): frames L2-normalised (`model.input`), S
frames sampled per video, a masked input batch norm and per modality a learnable
pooling (the audio stream with fewer clusters); the pooled vectors concatenated; a
dense hidden layer (with bias, no ReLU: their `--*_relu=False`); Context Gating;
then the head (theirs: a mixture of experts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.config.inputs import InputConfig
from videotag.layers import ContextGating, SampleFrames
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.layers.sampling import SAMPLINGS
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs


@dataclass
class LoupeConfig(ModelConfig):
    """Hyper-parameters shared by the LOUPE models (defaults: the authors' code).

    Attributes:
        cluster_size: K for the first feature (rgb); later features use fewer
            (K/2 for NetVLAD, NetRVLAD and NetFV; K/8 for soft DBoF).
        hidden_size: units of the dense layer after the concatenation.
        sample_frames: S, frames sampled per video before the pooling (their
            `--iterations=300`); 0 pools every valid frame.
        sampling: how the S frames are drawn in training: "uniform" (independent
            uniform draws, their `SampleRandomFrames`) or "segments" (one per equal
            segment); in inference always the segment middles.
        input_bn: batch-normalise the frames (over valid frames) before pooling.
        gating: Context Gating on the hidden vector.
        gating_batch_norm: the Context Gating's batch norm (the authors' code);
            false: the paper's bias (see `videotag.layers.ContextGating`).
        dropout: dropout rate before the hidden layer.
    """

    cluster_size: int = 256
    hidden_size: int = 1024
    sample_frames: int = 300
    sampling: str = "uniform"
    input_bn: bool = True
    gating: bool = True
    gating_batch_norm: bool = True
    dropout: float = 0.0
    input: InputConfig = field(default_factory=lambda: InputConfig(normalization="l2"))
    batch_norm_momentum: float = 0.999

    def validate(self, path: str = "model") -> None:
        """Checks the sampling (raises ConfigError naming the key)."""
        super().validate(path)
        engine.check_choice(f"{path}.sampling", self.sampling, SAMPLINGS)
        engine.check_positive(path, self, ("sample_frames",), strict=False)


@dataclass
class LoupePoolingParams:
    """Parameters of the LOUPE aggregators (NETVLAD, NETRVLAD; NETFV and SOFTDBOF
    extend them).

    Attributes:
        cluster_size: K for the first modality (later ones use fewer).
        input_bn: batch-normalise the frames (over valid frames) before pooling.
    """

    cluster_size: int = 64
    input_bn: bool = True

    def validate(self, path: str) -> None:
        """K must be positive (raises ConfigError naming the key)."""
        engine.check_positive(path, self, ("cluster_size",))


def pooling_aggregator(layer_cls, suffix: str, divisor: int, first_only=()):
    """An aggregator builder over `LoupePoolingParams` (or a subclass): optional
    masked input BN, then `layer_cls(K_i)` pooling, where K_i is `cluster_size` for
    index 0 and `cluster_size // divisor` after; the further parameters of a
    subclass (soft-DBoF's `max_pool`) go to `layer_cls` too, those named in
    `first_only` to the first modality only (later ones get False)."""

    def aggregate(params: LoupePoolingParams, x, mask, name, index):
        k = params.cluster_size if index == 0 else max(1, params.cluster_size // divisor)
        if params.input_bn:
            x = MaskedBatchNormalization(name=f"{name}_input_bn")(x, mask=mask)
        extra = {key: (value if index == 0 or key not in first_only else False)
                 for key, value in engine.to_dict(params).items()
                 if key not in ("cluster_size", "input_bn")}
        return layer_cls(cluster_size=k, name=f"{name}_{suffix}", **extra)(x, mask=mask)

    return aggregate


def build_loupe(cfg, kind: str) -> keras.Model:
    """A LOUPE model whose per-modality pooling is the aggregator `kind`, its
    parameters read from the model's config fields of the same names."""
    m = cfg.model
    inputs, frames, mask = frame_inputs(cfg)
    if m.sample_frames:  # the same frames of every feature
        frames, mask = SampleFrames(m.sample_frames, seed=cfg.train.seed, mode=m.sampling,
                                    name="sample_frames")(frames, mask)
    pooling = AGGREGATORS.from_attributes(kind, m, "model")
    pooled = [AGGREGATORS.build(pooling, x, mask, name, i)
              for i, (name, x) in enumerate(zip(cfg.data.feature_names, frames))]
    x = layers.Concatenate(name="concat")(pooled) if len(pooled) > 1 else pooled[0]
    if m.dropout:
        x = layers.Dropout(m.dropout, name="dropout")(x)
    x = layers.Dense(m.hidden_size, name="hidden")(x)
    if m.gating:
        x = ContextGating(m.gating_batch_norm, name="context_gating")(x)
    return keras.Model(inputs, video_outputs(cfg, x), name=kind.lower())
