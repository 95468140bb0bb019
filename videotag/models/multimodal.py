"""MULTIMODAL: frames of each modality + the title, fused (seeds 000 and 001).

Per modality a frame aggregator chosen by name (any registered one, e.g. NEXTVLAD),
a text encoder over the title (TextCNN, BiLSTM, or a pretrained BERT-family
transformer from a keras-hub preset; tokenised inside the model), and
a fusion of the vectors (`concat_se`, `gated` or `text_guided`, see
`videotag.layers.fusion`), then the configured head(s).

The title path (`model.text`, see `videotag.models.title`) follows the model
conventions of `videotag.models.interface`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, List

import keras
from keras import layers

from videotag.config import ModelConfig
from videotag.config.components import Component, merge_params
from videotag.data import schema
from videotag.data.vocab import load_word2vec
from videotag.errors import ConfigError
from videotag.layers import build_fusion
from videotag.layers.fusion import FUSIONS
from videotag.models.aggregators import AGGREGATORS
from videotag.models.interface import frame_inputs, video_outputs
from videotag.models.title import TextConfig, title_path
from videotag.registry import register_model


@dataclass
class MultimodalConfig(ModelConfig):
    """MULTIMODAL hyper-parameters.

    Attributes:
        aggregators: per frame feature (a name of `data.feature_names`), its
            aggregator: `type` (a name of `videotag.models.aggregators.AGGREGATORS`)
            and that aggregator's parameters, e.g. `{rgb: {type: NEXTVLAD,
            cluster_size: 64}}`. Features not named use NEXTVLAD with its defaults.
        text: tokenizer, vocabulary, embeddings and text encoder of the title.
        fusion: `type` ("concat_se", "gated" or "text_guided", see
            `videotag.layers.fusion.FUSIONS`) and its parameters (hidden_size,
            gating_reduction, dropout; attention_units for text_guided).
    """

    name: str = "MULTIMODAL"
    aggregators: Dict[str, Annotated[Component, AGGREGATORS]] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    fusion: Annotated[Component, FUSIONS] = FUSIONS.field()

    @classmethod
    def upgrade_config(cls, raw: Dict[str, Any], path: str) -> Dict[str, Any]:
        """Reads the form of videotag 0.1 (`fusion: gated` beside `fusion_params:
        {...}`) as `fusion: {type: gated, ...}`, so older run configs still load."""
        return merge_params(raw, "fusion", "fusion_params")

    def frozen_layers(self) -> Dict[str, List[str]]:
        """Layers the model's own keys keep fixed in training, by key (the text
        encoder's `freeze`); the trainer freezes them like `train.freeze`."""
        layers_ = self.text.frozen_layers()
        return {"model.text.encoder.freeze": layers_} if layers_ else {}


def aggregator_specs(cfg) -> Dict[str, Component]:
    """The aggregator of each frame feature, from `model.aggregators` (NEXTVLAD with
    its defaults for a feature not named there).

    Raises:
        ConfigError: `model.aggregators` names a feature that is not one of
            `data.feature_names`.
    """
    names = list(cfg.data.feature_names)
    given = cfg.model.aggregators or {}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"config key 'model.aggregators.{unknown[0]}' is not a frame feature "
                          f"(data.feature_names: {', '.join(names)})")
    return {name: given.get(name) or AGGREGATORS.read(None, f"model.aggregators.{name}")
            for name in names}


@register_model("MULTIMODAL", MultimodalConfig)
def build_multimodal(cfg) -> keras.Model:
    """Frames + title classifier; outputs `tags` and/or `category`, and `embedding`."""
    m = cfg.model
    if not cfg.data.use_title:
        raise ConfigError("MULTIMODAL reads titles: set data.use_title: true (configs/"
                          "multimodal.yaml does)")
    if cfg.data.record_type != "frame":
        raise ConfigError("MULTIMODAL needs frame-level records (data.record_type: frame)")
    specs = aggregator_specs(cfg)
    inputs, frames, mask = frame_inputs(cfg)
    title = title_path(m.text)
    inputs[schema.TITLE_KEY] = title.title
    # batch norm as at the end of the frame aggregators: the title enters the fusion
    # at the scale of the frame vectors (it is learned faster; empty titles stay finite)
    text_vector = layers.BatchNormalization(name="title_bn")(
        title.encoder(title.embeddings, title.mask))

    vectors = []
    for i, (name, x) in enumerate(zip(cfg.data.feature_names, frames)):
        vectors.append(AGGREGATORS.build(specs[name], x, mask, name, i))
    fused = build_fusion(m.fusion, vectors, text_vector, frames, mask, cfg.data.feature_names)
    model = keras.Model(inputs, video_outputs(cfg, fused), name="multimodal")
    if m.text.pretrained_embeddings:
        vocabulary = model.get_layer("title_tokens").vocabulary
        matrix, _ = load_word2vec(m.text.pretrained_embeddings, vocabulary, m.text.embedding_dim,
                                  seed=cfg.train.seed)
        model.get_layer("title_embedding").embeddings.assign(matrix)
    return model
