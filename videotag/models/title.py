"""The title path of models that read titles: its `model.text` section and its inputs.

The path follows the model conventions of `videotag.models.interface`: input
`title` (string [B]) -> `title_tokens` -> `title_mask` and `title_embedding` ->
the text encoder, which sees only the embeddings and the mask.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Annotated, Any, Dict

import keras
from keras import layers

from videotag.config import engine
from videotag.config.components import Component, merge_params
from videotag.data import schema
from videotag.data.vocab import MODES, load_vocabulary
from videotag.layers import TitleTokenizer, TokenMask
from videotag.layers.text import TEXT_ENCODERS


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
            [2, 3, 4, 5], filters: 64}` (Kim 2014) or `{type: bilstm, units: 64,
            pooling: mean}`; see `videotag.layers.text.TEXT_ENCODERS`.
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

    def validate(self, path: str = "model.text") -> None:
        """Checks the tokenizer and the sizes (raises ConfigError naming the key)."""
        engine.check_choice(f"{path}.tokenizer", self.tokenizer, MODES)
        engine.check_positive(path, self, ("max_length", "embedding_dim", "vocab_max_size",
                                           "vocab_min_count"))


def title_inputs(text: TextConfig):
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
