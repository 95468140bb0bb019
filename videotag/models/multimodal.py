"""MULTIMODAL: frames of each modality + the title, fused (seeds 000 and 001).

Per modality a frame aggregator chosen by name (any registered one, e.g. NEXTVLAD),
a text encoder over the title (TextCNN or BiLSTM, tokenised inside the model), and
a fusion of the vectors (`concat_se`, `gated` or `text_guided`, see
`videotag.layers.fusion`), then the configured head(s).

The title path follows the model conventions of `videotag.models.interface`: input
`title` (string [B]) -> `title_tokens` -> `title_mask` and `title_embedding` ->
the encoder, which sees only the embeddings and the mask.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

import keras
from keras import layers

from videotag.config import ModelConfig, TextConfig
from videotag.data import schema
from videotag.data.vocab import load_vocabulary, load_word2vec
from videotag.errors import ConfigError
from videotag.layers import TitleTokenizer, TokenMask, build_fusion, build_text_encoder
from videotag.models.aggregators import aggregator_params, build_aggregator
from videotag.models.interface import frame_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class MultimodalConfig(ModelConfig):
    """MULTIMODAL hyper-parameters.

    Attributes:
        aggregators: per frame feature (a name of `data.feature_names`), a mapping
            with `type` (a registered aggregator: see
            `videotag.models.aggregators.list_aggregators()`) and that aggregator's
            hyper-parameters, e.g. `{rgb: {type: NEXTVLAD, cluster_size: 64}}`.
            Features not named use NEXTVLAD with its defaults.
        text: tokenizer, vocabulary, embeddings and text encoder of the title.
        fusion: "concat_se", "gated" or "text_guided".
        fusion_params: the fusion's hyper-parameters (hidden_size, gating_reduction,
            dropout; attention_units for text_guided).
    """

    name: str = "MULTIMODAL"
    aggregators: Dict[str, Any] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    fusion: str = "concat_se"
    fusion_params: Dict[str, Any] = field(default_factory=dict)


def aggregator_specs(cfg) -> Dict[str, Tuple[str, Dict[str, Any]]]:
    """(aggregator name, checked params) per frame feature, from `model.aggregators`."""
    names = list(cfg.data.feature_names)
    given = cfg.model.aggregators or {}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"config key 'model.aggregators.{unknown[0]}' is not a frame feature "
                          f"(data.feature_names: {', '.join(names)})")
    specs = {}
    for name in names:
        entry = given.get(name) or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"config key 'model.aggregators.{name}' expects a mapping like "
                              f"{{type: NEXTVLAD, cluster_size: 32}}, got {entry!r}")
        params = dict(entry)
        kind = str(params.pop("type", "NEXTVLAD"))
        specs[name] = (kind, aggregator_params(kind, params, f"model.aggregators.{name}"))
    return specs


def title_inputs(cfg, text: TextConfig):
    """The title input and its path up to the encoder's inputs.

    Returns:
        (title input string [B], token ids [B, L], mask bool [B, L],
        embeddings [B, L, E]).
    """
    vocabulary = load_vocabulary(text.vocab_file) if text.vocab_file else []
    if not vocabulary:
        warnings.warn("model.text.vocab_file is empty: every title token is out of vocabulary "
                      "(the trainer builds the vocabulary from the training titles)",
                      stacklevel=3)
    title = keras.Input((), dtype="string", name=schema.TITLE_KEY)
    ids = TitleTokenizer(vocabulary, text.tokenizer, text.max_length, name="title_tokens")(title)
    mask = TokenMask(name="title_mask")(ids)
    embedding = layers.Embedding(len(vocabulary) + 2, text.embedding_dim,
                                 trainable=text.train_embeddings, name="title_embedding")
    return title, ids, mask, embedding(ids)


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
    title, ids, title_mask, embeddings = title_inputs(cfg, m.text)
    inputs[schema.TITLE_KEY] = title
    encoder = build_text_encoder(m.text.encoder, m.text.encoder_params)
    # batch norm as at the end of the frame aggregators: the title enters the fusion
    # at the scale of the frame vectors (it is learned faster; empty titles stay finite)
    text_vector = layers.BatchNormalization(name="title_bn")(encoder(embeddings, title_mask))

    vectors = []
    for i, (name, x) in enumerate(zip(cfg.data.feature_names, frames)):
        kind, params = specs[name]
        vectors.append(build_aggregator(kind, x, mask, params, name=name, index=i,
                                        where=f"model.aggregators.{name}"))
    fused = build_fusion(m.fusion, m.fusion_params, vectors, text_vector, frames, mask,
                         cfg.data.feature_names)
    model = keras.Model(inputs, video_outputs(cfg, fused), name="multimodal")
    if m.text.pretrained_embeddings:
        vocabulary = model.get_layer("title_tokens").vocabulary
        matrix, _ = load_word2vec(m.text.pretrained_embeddings, vocabulary, m.text.embedding_dim,
                                  seed=cfg.train.seed)
        model.get_layer("title_embedding").embeddings.assign(matrix)
    return model
