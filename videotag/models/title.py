"""The title path of models that read titles: its `model.text` section and its layers.

The path follows the model conventions of `videotag.models.interface`: input
`title` (string [B]) -> `title_tokens` -> `title_mask` and `title_embedding` ->
the text encoder `title_encoder`, which sees only the embeddings and the mask.
With the `transformer` encoder the tokenizer, the embedding matrix and the
encoder come from a keras-hub preset (`videotag.layers.text_transformer`); with the
others the vocabulary is the run's own (`videotag.data.vocab`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Annotated, Any, Dict, List, NamedTuple

import keras
from keras import layers

from videotag.config import engine
from videotag.config.components import Component, merge_params
from videotag.data import schema
from videotag.data.vocab import MODES, load_vocabulary
from videotag.layers import TitleTokenizer, TokenMask
from videotag.errors import ConfigError
from videotag.layers.text import TEXT_ENCODERS
from videotag.layers.text_transformer import TRANSFORMER, load_preset


@dataclass
class TextConfig:
    """Title tokenisation and text encoder of models that read titles.

    Tokenisation runs inside the model (an exported model takes raw UTF-8 titles).

    Attributes:
        tokenizer: "word" (lowercase, split on whitespace and punctuation), "char"
            (one token per character: Chinese) or "auto" (words, and every CJK
            character a token of its own: mixed titles).
        max_length: tokens kept per title (longer titles are truncated).
        vocab_file: one token per line (token id = line index + 2; 0 is padding,
            1 out-of-vocabulary). Empty: built from the training titles when
            training starts and saved as `vocab.txt` in the model directory.
        vocab_min_count: a token needs this many occurrences to enter the vocabulary.
        vocab_max_size: at most this many tokens (the most frequent).
        embedding_dim: size of the token embeddings.
        pretrained_embeddings: optional word2vec text file ("count dim" header, then
            "token v1 ... v_dim") to initialise the embeddings of its tokens.
        train_embeddings: fine-tune the embeddings.
        encoder: the text encoder and its parameters, `{type: textcnn, windows:
            [2, 3, 4, 5], filters: 64}` (Kim 2014), `{type: bilstm, units: 64,
            pooling: mean}` or `{type: transformer, preset: <keras-hub preset
            folder>, output: pooled}`; see `videotag.layers.text.TEXT_ENCODERS`.
            The transformer brings its own tokenizer, vocabulary and embeddings
            (`tokenizer`, `vocab_*`, `embedding_dim` and `pretrained_embeddings`
            do not apply; `max_length` counts its [CLS] and [SEP]).
    """

    tokenizer: str = "auto"
    max_length: int = 32
    vocab_file: str = ""
    vocab_min_count: int = 2
    vocab_max_size: int = 20000
    embedding_dim: int = 64
    pretrained_embeddings: str = ""
    train_embeddings: bool = True
    encoder: Annotated[Component, TEXT_ENCODERS] = TEXT_ENCODERS.field()

    @classmethod
    def upgrade_config(cls, raw: Dict[str, Any], path: str) -> Dict[str, Any]:
        """Reads the form of videotag 0.1 (`encoder: textcnn` beside `encoder_params:
        {...}`) as `encoder: {type: textcnn, ...}`, so older run configs still load."""
        return merge_params(raw, "encoder", "encoder_params")

    @property
    def pretrained_encoder(self) -> bool:
        """Whether the encoder is a pretrained transformer with its own vocabulary."""
        return self.encoder.type == TRANSFORMER

    def validate(self, path: str = "model.text") -> None:
        """Checks the tokenizer and the sizes (raises ConfigError naming the key)."""
        engine.check_choice(f"{path}.tokenizer", self.tokenizer, MODES)
        engine.check_positive(path, self, ("max_length", "embedding_dim", "vocab_max_size",
                                           "vocab_min_count"))
        if self.pretrained_encoder and self.pretrained_embeddings:
            raise ConfigError(f"config key '{path}.pretrained_embeddings' is set, but the "
                              f"transformer encoder takes its embeddings from its preset")

    def frozen_layers(self) -> List[str]:
        """Layer paths its encoder asks to keep fixed (its `freeze` flag)."""
        return self.encoder.params.frozen_layers() if self.pretrained_encoder else []


class TitlePath(NamedTuple):
    """The title input and the layers up to its vector."""

    title: keras.KerasTensor  # string [B], the model input
    ids: keras.KerasTensor  # int32 [B, L]
    mask: keras.KerasTensor  # bool [B, L]
    embeddings: keras.KerasTensor  # float [B, L, E]
    encoder: keras.layers.Layer  # (embeddings, mask) -> [B, D]


def title_path(text: TextConfig) -> TitlePath:
    """The title input, its tokens, mask and embeddings, and the encoder layer.

    Raises:
        ConfigError: a vocabulary file or preset folder that cannot be read.
    """
    title = keras.Input((), dtype="string", name=schema.TITLE_KEY)
    if text.pretrained_encoder:
        return _pretrained_path(text, title)
    vocabulary = load_vocabulary(text.vocab_file) if text.vocab_file else []
    if not vocabulary:
        warnings.warn("model.text.vocab_file is empty: every title token is out of vocabulary "
                      "(the trainer builds the vocabulary from the training titles)",
                      stacklevel=3)
    ids = TitleTokenizer(vocabulary, text.tokenizer, text.max_length, name="title_tokens")(title)
    mask = TokenMask(name="title_mask")(ids)
    embedding = layers.Embedding(len(vocabulary) + 2, text.embedding_dim,
                                 trainable=text.train_embeddings, name="title_embedding")
    encoder = TEXT_ENCODERS.build(text.encoder, "title_encoder")
    return TitlePath(title, ids, mask, embedding(ids), encoder)


def _pretrained_path(text: TextConfig, title: keras.KerasTensor) -> TitlePath:
    """The path of a keras-hub preset: its tokenizer, its token embeddings (copied
    into `title_embedding`) and the rest of its backbone."""
    backbone, tokenizer = load_preset(text.encoder.params.preset, text.max_length)
    ids = tokenizer(title)
    mask = TokenMask(tokenizer.pad_id, name="title_mask")(ids)
    matrix = backbone.token_embedding.embeddings
    embedding = layers.Embedding(int(matrix.shape[0]), int(matrix.shape[1]),
                                 trainable=text.train_embeddings, name="title_embedding")
    embeddings = embedding(ids)
    embedding.embeddings.assign(matrix)
    encoder = TEXT_ENCODERS.build(text.encoder, "title_encoder", backbone=backbone)
    return TitlePath(title, ids, mask, embeddings, encoder)
