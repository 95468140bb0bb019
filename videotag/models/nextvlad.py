"""NEXTVLAD: NeXtVLAD per modality + SE context gating (Lin et al. 2018, arXiv
1811.05014; the authors' linrongc/youtube-8m nextvlad.py `NeXtVLADModel`).

The second YT8M challenge's best single model (GAP 0.8785 in the paper).
"""

from dataclasses import dataclass, field

import keras
from keras import layers

from videotag.config import ModelConfig, engine
from videotag.config.inputs import InputConfig
from videotag.layers import NeXtVLAD, SEContextGating
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class NeXtVLADConfig(ModelConfig):
    """NeXtVLAD hyper-parameters (defaults: the authors' code; the input rescaled by
    YT8M's PCA eigenvalues, which `model.input.eigenvalues_file` must then give).

    Attributes:
        cluster_size: K for the first feature (rgb); other features (audio) use K/2.
        groups: G for the first feature; other features use G/2.
        expansion: lambda.
        hidden_size: units of the dense layer after concatenation.
        gating_reduction: r of the SE context gating.
        dropout: dropout rate before the hidden layer.
    """

    name: str = "NEXTVLAD"
    cluster_size: int = 128
    groups: int = 8
    expansion: int = 2
    hidden_size: int = 2048
    gating_reduction: int = 8
    dropout: float = 0.5
    input: InputConfig = field(default_factory=lambda: InputConfig(normalization="eigenvalues"))
    batch_norm_momentum: float = 0.999


@dataclass
class NeXtVLADParams:
    """Parameters of the NEXTVLAD aggregator (for the first modality; later ones use
    half the clusters and groups).

    Attributes:
        cluster_size: K.
        groups: G.
        expansion: lambda.
    """

    cluster_size: int = 64
    groups: int = 8
    expansion: int = 2

    def validate(self, path: str) -> None:
        """Every parameter must be positive (raises ConfigError naming the key)."""
        engine.check_positive(path, self, ("cluster_size", "groups", "expansion"))


@AGGREGATORS.register("NEXTVLAD", NeXtVLADParams)
def nextvlad_aggregator(params: NeXtVLADParams, x, mask, name, index):
    """NeXtVLAD pooling + batch norm: [B, T, D] -> [B, K_i * lambda * D / G_i]."""
    scale = 1 if index == 0 else 2  # later modalities: half the clusters and groups
    vlad = NeXtVLAD(
        cluster_size=max(1, params.cluster_size // scale),
        groups=max(1, params.groups // scale),
        expansion=params.expansion,
        name=f"{name}_nextvlad",
    )(x, mask=mask)
    return layers.BatchNormalization(name=f"{name}_vlad_bn")(vlad)


def nextvlad_embedding(m: NeXtVLADConfig, feature_names, frames, mask, prefix: str = ""):
    """The NeXtVLAD video vector [B, hidden_size]: per feature NeXtVLAD and batch norm
    (the features after the first with half the clusters and groups), concatenation,
    dropout, the hidden dense (no bias) with batch norm, SE context gating.

    Args:
        m: the model config (cluster_size, groups, expansion, hidden_size,
            gating_reduction, dropout).
        feature_names: names of the features, in `frames` order.
        frames: float frames [B, T, size] per feature.
        mask: bool [B, T], True on valid frames.
        prefix: prepended to every layer name (one NeXtVLAD of several in a model).
    """
    pooled = []
    for i, (name, x) in enumerate(zip(feature_names, frames)):
        scale = 1 if i == 0 else 2  # the audio branch: half the clusters and groups
        vlad = NeXtVLAD(
            cluster_size=max(1, m.cluster_size // scale),
            groups=max(1, m.groups // scale),
            expansion=m.expansion,
            name=f"{prefix}nextvlad_{name}",
        )(x, mask=mask)
        pooled.append(layers.BatchNormalization(name=f"{prefix}vlad_bn_{name}")(vlad))
    x = layers.Concatenate(name=f"{prefix}concat")(pooled) if len(pooled) > 1 else pooled[0]
    x = layers.Dropout(m.dropout, name=f"{prefix}dropout")(x)
    x = layers.Dense(m.hidden_size, use_bias=False, name=f"{prefix}hidden")(x)
    x = layers.BatchNormalization(name=f"{prefix}hidden_bn")(x)
    return SEContextGating(m.gating_reduction, name=f"{prefix}context_gating")(x)


@register_model("NEXTVLAD", NeXtVLADConfig)
def build_nextvlad(cfg) -> keras.Model:
    """NeXtVLAD video classifier; outputs `tags` and `embedding`."""
    inputs, frames, mask = frame_inputs(cfg)
    x = nextvlad_embedding(cfg.model, cfg.data.feature_names, frames, mask)
    return keras.Model(inputs, video_outputs(cfg, x), name="nextvlad")
