"""Titles inside the model: tokenizer, token mask, and text encoders (TextCNN, BiLSTM).

The path of a title: `TitleTokenizer` (string [B] -> token ids [B, L]), `TokenMask`
(ids -> bool [B, L]), an embedding ([B, L, E]), then an encoder over the embeddings
and the mask (-> [B, D]). Encoders see nothing but the embeddings and the mask, so
padding never counts and an empty title (no tokens) gives a zero vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Sequence

import keras
import tensorflow as tf
from keras import layers, ops

from videotag.config import engine
from videotag.config.components import Registry
from videotag.data.vocab import MODES, NUM_RESERVED, OOV_ID, PAD_ID, split_tokens
from videotag.errors import ConfigError


@keras.saving.register_keras_serializable(package="videotag")
class TitleTokenizer(keras.layers.Layer):
    """Raw UTF-8 titles -> token ids, with core TensorFlow ops only.

    Ids: 0 padding, 1 out-of-vocabulary, `i + 2` for `vocabulary[i]`. Titles longer
    than `max_length` tokens are truncated; shorter ones padded with 0. The
    vocabulary is part of the layer's config, so a `.keras` file carries it, and a
    SavedModel holds it as a lookup table in its graph.

    Args:
        vocabulary: the tokens, in id order (see `videotag.data.vocab`).
        mode: "word", "char" or "auto" (see `videotag.data.vocab.split_tokens`).
        max_length: L, the tokens kept per title.
    Shapes:
        string [B] -> int32 [B, max_length].
    """

    def __init__(self, vocabulary: Sequence[str] = (), mode: str = "auto", max_length: int = 32,
                 **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ConfigError(f"unknown tokenizer mode '{mode}' (valid: {', '.join(MODES)})")
        self.vocabulary = [str(t) for t in vocabulary]
        self.mode = mode
        self.max_length = int(max_length)
        if self.vocabulary:
            keys = tf.constant(self.vocabulary, tf.string)
            values = tf.range(NUM_RESERVED, self.vocabulary_size, dtype=tf.int32)
        else:  # no vocabulary: every token is out-of-vocabulary ("" is never a token)
            keys, values = tf.constant([""]), tf.constant([OOV_ID], tf.int32)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=OOV_ID)

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, the reserved two included."""
        return len(self.vocabulary) + NUM_RESERVED

    def call(self, titles):
        titles = tf.reshape(tf.convert_to_tensor(titles, tf.string), [-1])
        tokens = split_tokens(titles, self.mode)[:, : self.max_length]
        ids = tf.ragged.map_flat_values(self._table.lookup, tokens)
        return ids.to_tensor(PAD_ID, shape=[None, self.max_length])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_length)

    def compute_output_spec(self, titles):
        return keras.KerasTensor((titles.shape[0], self.max_length), dtype="int32")

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "mode": self.mode,
            "max_length": self.max_length,
        }


@keras.saving.register_keras_serializable(package="videotag")
class TokenMask(keras.layers.Layer):
    """Bool mask of the real tokens: ids [B, L] -> ids != pad_id, bool [B, L].

    Args:
        pad_id: the padding id (0 for `TitleTokenizer`; a preset's own for
            `PresetTitleTokenizer`).
    """

    def __init__(self, pad_id: int = PAD_ID, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)

    def call(self, ids):
        return ops.not_equal(ids, self.pad_id)

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}


TEXTCNN_ACTIVATIONS = ("relu", "tanh")
TEXTCNN_ALIGNMENTS = ("start", "center")


@keras.saving.register_keras_serializable(package="videotag")
class TextCNN(keras.layers.Layer):
    """TextCNN (Kim 2014): n-gram convolutions, an activation, max over time, concatenated.

    Padding reads as zero vectors (Kim pads short sentences with zeros) and only
    windows at a real token enter the max. A window of size w at token t covers,
    with `alignment` "start" (Kim), tokens t .. t + w - 1; with "center" (paddle's
    `sequence_conv`, which seed 001's TextCNN uses), tokens t - w // 2 .. t - w // 2
    + w - 1. A title without tokens gives zeros.

    Args:
        windows: window sizes (default 2, 3, 4, 5).
        filters: filters per window size.
        activation: "relu" (Kim) or "tanh" (seed 001).
        alignment: "start" or "center", where a token's windows lie (see above).
    Call args:
        embeddings: float [B, L, E].
        mask: bool [B, L], True for real tokens (a prefix of each row).
    Shapes:
        -> [B, filters * len(windows)].
    """

    def __init__(self, windows: Sequence[int] = (2, 3, 4, 5), filters: int = 64,
                 activation: str = "relu", alignment: str = "start", **kwargs):
        super().__init__(**kwargs)
        self.windows = [int(w) for w in windows]
        self.filters = int(filters)
        if not self.windows or min(self.windows) < 1 or self.filters < 1:
            raise ConfigError(f"TextCNN needs window sizes >= 1 and filters >= 1, got "
                              f"windows {self.windows}, filters {self.filters}")
        if activation not in TEXTCNN_ACTIVATIONS or alignment not in TEXTCNN_ALIGNMENTS:
            raise ConfigError(f"TextCNN activation '{activation}' or alignment '{alignment}' "
                              f"unknown (valid: {', '.join(TEXTCNN_ACTIVATIONS)}; "
                              f"{', '.join(TEXTCNN_ALIGNMENTS)})")
        self.activation = activation
        self.alignment = alignment
        self.convs = [layers.Conv1D(self.filters, w, activation=activation, name=f"conv_{w}",
                                    dtype=self.dtype_policy)
                      for w in self.windows]

    def build(self, embeddings_shape, mask_shape=None):
        dim = int(embeddings_shape[-1])
        for conv in self.convs:
            conv.build((None, None, dim))

    def call(self, embeddings, mask):
        valid = ops.expand_dims(mask, -1)
        x = embeddings * ops.cast(valid, embeddings.dtype)
        steps = ops.shape(x)[1]
        before = max(self.windows) // 2 if self.alignment == "center" else 0
        x = ops.pad(x, [[0, 0], [before, max(self.windows) - 1], [0, 0]])
        pooled = []
        for w, conv in zip(self.windows, self.convs):
            # output i of the padded sequence covers its tokens i .. i + w - 1, i.e.
            # tokens i - before .. of the title: keep those of windows at tokens 0 .. L-1
            shift = before - (w // 2 if self.alignment == "center" else 0)
            y = conv(x)[:, shift:shift + steps]
            y = ops.max(ops.where(valid, y, -1e4), axis=1)  # below any activation
            pooled.append(ops.where(ops.any(mask, axis=1, keepdims=True), y, ops.zeros_like(y)))
        return ops.concatenate(pooled, axis=-1) if len(pooled) > 1 else pooled[0]

    def compute_output_shape(self, embeddings_shape, mask_shape=None):
        return (embeddings_shape[0], self.filters * len(self.windows))

    def get_config(self):
        return {**super().get_config(), "windows": list(self.windows), "filters": self.filters,
                "activation": self.activation, "alignment": self.alignment}


BILSTM_POOLINGS = ("mean", "final")


@keras.saving.register_keras_serializable(package="videotag")
class BiLSTMEncoder(keras.layers.Layer):
    """Bidirectional LSTM over the real tokens, pooled to one vector.

    Args:
        units: LSTM units per direction.
        pooling: "mean" (masked mean of the outputs over the real tokens) or "final"
            (the last state of each direction, concatenated).
    Call args:
        embeddings: float [B, L, E].
        mask: bool [B, L], True for real tokens (padding at the end).
    Shapes:
        -> [B, 2 * units]; zeros for a title without tokens.
    """

    def __init__(self, units: int = 64, pooling: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if pooling not in BILSTM_POOLINGS:
            raise ConfigError(f"BiLSTM pooling is '{pooling}'; valid: mean, final")
        self.units = int(units)
        self.pooling = pooling
        self.rnn = layers.Bidirectional(
            layers.LSTM(self.units, return_sequences=pooling == "mean",
                        dtype=self.dtype_policy), name="bilstm", dtype=self.dtype_policy)

    def build(self, embeddings_shape, mask_shape=None):
        self.rnn.build((None, None, int(embeddings_shape[-1])))

    def call(self, embeddings, mask, training=None):
        valid = ops.cast(ops.expand_dims(mask, -1), embeddings.dtype)
        out = self.rnn(embeddings * valid, mask=mask, training=training)
        if self.pooling == "final":
            # a title without tokens keeps the zero initial state
            return out * ops.cast(ops.any(mask, axis=1, keepdims=True), out.dtype)
        valid = ops.cast(valid, out.dtype)
        count = ops.maximum(ops.sum(valid, axis=1), 1.0)
        return ops.sum(out * valid, axis=1) / count

    def compute_output_shape(self, embeddings_shape, mask_shape=None):
        return (embeddings_shape[0], 2 * self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pooling": self.pooling}


@dataclass
class TextCNNParams:
    """Parameters of the `textcnn` encoder (see `TextCNN`)."""

    windows: List[int] = field(default_factory=lambda: [2, 3, 4, 5])
    filters: int = 64
    activation: str = "relu"
    alignment: str = "start"

    def validate(self, path: str) -> None:
        """At least one window; windows and filters >= 1; a known activation and
        alignment (ConfigError naming the key)."""
        if not self.windows or min(self.windows) < 1:
            raise ConfigError(f"config key '{path}.windows' is {self.windows}; give one or "
                              "more window sizes >= 1")
        engine.check_positive(path, self, ("filters",))
        engine.check_choice(f"{path}.activation", self.activation, TEXTCNN_ACTIVATIONS)
        engine.check_choice(f"{path}.alignment", self.alignment, TEXTCNN_ALIGNMENTS)


@dataclass
class BiLSTMParams:
    """Parameters of the `bilstm` encoder (see `BiLSTMEncoder`)."""

    units: int = 64
    pooling: str = "mean"

    def validate(self, path: str) -> None:
        """Known pooling, units >= 1 (raises ConfigError naming the key)."""
        engine.check_choice(f"{path}.pooling", self.pooling, BILSTM_POOLINGS)
        engine.check_positive(path, self, ("units",))


TEXT_ENCODERS = Registry("text encoder", default="textcnn")
TEXT_ENCODERS.register("textcnn", TextCNNParams)(
    lambda params, name: TextCNN(params.windows, params.filters, params.activation,
                                 params.alignment, name=name))
TEXT_ENCODERS.register("bilstm", BiLSTMParams)(
    lambda params, name: BiLSTMEncoder(params.units, params.pooling, name=name))


def build_text_encoder(encoder: Any = "textcnn", name: str = "title_encoder",
                       path: str = "model.text.encoder") -> keras.layers.Layer:
    """The text encoder layer a config describes.

    Args:
        encoder: a `Component` of `TEXT_ENCODERS`, or its config form: "textcnn"
            or "bilstm", or a mapping of `type` and parameters (`TextCNNParams`,
            `BiLSTMParams`).
        name: the layer's name.
        path: the dotted config key of `encoder`, for messages.

    Returns:
        A layer `(embeddings [B, L, E], mask [B, L]) -> [B, D]`.

    Raises:
        ConfigError: unknown encoder or parameter, listing the valid ones.
    """
    return TEXT_ENCODERS.build(TEXT_ENCODERS.read(encoder, path), name)
