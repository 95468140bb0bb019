"""Pretrained transformer title encoders (BERT family) from keras-hub presets.

A keras-hub preset folder holds a backbone (architecture and weights) and its
tokenizer (a WordPiece vocabulary for BERT). The title path of a model with
`model.text.encoder: {type: transformer, preset: <folder>}` is, by the layer names
of `videotag.models.interface`:

    title string [B]
      -> title_tokens   `PresetTitleTokenizer`: the preset's tokenizer, then
                        [CLS] tokens [SEP] padded to L ids (int32 [B, L])
      -> title_mask     `TokenMask` with the preset's padding id (bool [B, L])
      -> title_embedding  the backbone's token embedding matrix (float [B, L, H])
      -> title_encoder  `TransformerTitleEncoder`: the rest of the backbone (position
                        and segment embeddings, normalisation, transformer layers) and
                        its pooled output, its [CLS] vector, or a TextCNN over its
                        sequence output ([B, D])

so FGM perturbs the token embeddings that enter the transformer, and
`train.freeze` / `train.lr_multipliers` reach its layers by their paths. The rest of
the backbone is the backbone's own Keras graph, cut after its token embedding (no
layer of it is written here). keras-hub and tensorflow-text are the `text` extra of
the package; they are imported only when such a layer is made.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import tensorflow as tf
from keras import layers, ops

from videotag.config import engine
from videotag.errors import ConfigError
from videotag.layers.text import TEXT_ENCODERS, TextCNN, TextCNNParams

TRANSFORMER = "transformer"
OUTPUTS = ("pooled", "cls", "textcnn")
INSTALL_HINT = "pip install 'videotag[text]' (keras-hub and tensorflow-text)"


def keras_hub():
    """The keras_hub module (ConfigError with the install command when it is missing)."""
    try:
        import keras_hub as module
    except ImportError as exc:
        raise ConfigError(f"the transformer text encoder needs keras-hub: {INSTALL_HINT} "
                          f"({exc})") from None
    return module


@keras.saving.register_keras_serializable(package="videotag")
class PresetTitleTokenizer(keras.layers.Layer):
    """Raw UTF-8 titles -> the token ids a keras-hub backbone reads.

    The preset's own tokenizer (for BERT, keras-hub's `BertTokenizer`: lowercasing
    as the preset says, CJK characters one token each, WordPiece), then keras-hub's
    `StartEndPacker`: the start token ([CLS]), the first `sequence_length - 2`
    tokens, the end token ([SEP]), padding. An empty title is [CLS] [SEP]. The
    vocabulary is part of the layer's config, so a `.keras` file carries it; in a
    SavedModel the tokenizer is tensorflow-text ops (see the README, "Pretrained
    text encoders", for TF Serving).

    Args:
        tokenizer: a keras-hub tokenizer, or its `keras.saving` config.
        vocabulary: its tokens in id order (None: the tokenizer's own).
        sequence_length: L, ids per title, the two special tokens included.
        start_id, end_id, pad_id: the special ids (None: the tokenizer's
            `start_token_id`, `end_token_id`, `pad_token_id`).
    Shapes:
        string [B] -> int32 [B, sequence_length].
    """

    def __init__(self, tokenizer: Any = None, vocabulary: Optional[Sequence[str]] = None,
                 sequence_length: int = 32, start_id: Optional[int] = None,
                 end_id: Optional[int] = None, pad_id: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        hub = keras_hub()
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        if tokenizer is None:
            raise ValueError("PresetTitleTokenizer needs a keras-hub tokenizer")
        if vocabulary is not None:
            tokenizer.set_vocabulary(list(vocabulary))
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.start_id = int(tokenizer.start_token_id if start_id is None else start_id)
        self.end_id = int(tokenizer.end_token_id if end_id is None else end_id)
        self.pad_id = int(tokenizer.pad_token_id if pad_id is None else pad_id)
        if self.sequence_length < 3:
            raise ConfigError(f"a title needs room for its two special tokens and one more: "
                              f"sequence length {self.sequence_length} < 3")
        self.packer = hub.layers.StartEndPacker(
            self.sequence_length, start_value=self.start_id, end_value=self.end_id,
            pad_value=self.pad_id, dtype="int32", name="packer")

    def build(self, input_shape=None):
        pass  # the tokenizer and the packer have no weights

    def call(self, titles):
        titles = tf.reshape(tf.convert_to_tensor(titles, tf.string), [-1])
        ids = self.packer(self.tokenizer(titles))
        return tf.ensure_shape(tf.cast(ids, tf.int32), [None, self.sequence_length])

    def compute_output_spec(self, titles):
        return keras.KerasTensor((titles.shape[0], self.sequence_length), dtype="int32")

    def get_config(self):
        tokenizer = keras.saving.serialize_keras_object(self.tokenizer)
        return {**super().get_config(), "tokenizer": tokenizer,
                "vocabulary": list(self.tokenizer.get_vocabulary()),
                "sequence_length": self.sequence_length, "start_id": self.start_id,
                "end_id": self.end_id, "pad_id": self.pad_id}


TAIL = "transformer"


@contextlib.contextmanager
def backbone_scope(encoder_name: str):
    """Name scope to build a backbone in for `TransformerTitleEncoder(name=encoder_name)`:
    its layers' paths are then `<encoder_name>/transformer/<layer>`
    (`title_encoder/transformer/transformer_layer_0`), which `train.freeze` and
    `train.lr_multipliers` match."""
    with keras.name_scope(encoder_name), keras.name_scope(TAIL):
        yield


def backbone_tail(backbone: keras.Model, name: str = TAIL) -> Tuple[keras.Model, bool]:
    """The backbone's graph from the output of its token embedding to its outputs.

    Returns:
        (model, takes_segments): a Keras model `[token embeddings [B, L, H],
        padding mask int32 [B, L] (, segment ids int32 [B, L])] -> the backbone's
        outputs`, sharing the backbone's layers; `takes_segments` says whether it
        has the segment input (BERT does).

    Raises:
        ConfigError: the backbone does not embed its `token_ids` input with its
            `token_embedding` layer alone (e.g. a combined token-and-position
            embedding), so its token embeddings cannot be cut out.
    """
    inputs = backbone.input
    if not isinstance(inputs, dict) or not {"token_ids", "padding_mask"} <= set(inputs):
        raise ConfigError(f"{type(backbone).__name__} does not take token_ids and padding_mask; "
                          "the transformer text encoder needs a BERT-family backbone")
    embedding = getattr(backbone, "token_embedding", None)
    try:
        embedded = embedding.output
        takes_ids = embedding.input is inputs["token_ids"]
    except (AttributeError, ValueError):
        takes_ids = False
    if not takes_ids:
        raise ConfigError(f"{type(backbone).__name__} has no token_embedding layer of its own "
                          "over token_ids (keras-hub's BertBackbone has one); its token "
                          "embeddings cannot be cut out for the title path")
    tail_inputs = [embedded, inputs["padding_mask"]]
    takes_segments = "segment_ids" in inputs
    if takes_segments:
        tail_inputs.append(inputs["segment_ids"])
    model = keras.Model(tail_inputs, backbone.output, name=name)
    model.dtype_policy = backbone.dtype_policy  # as keras-hub sets its backbones'
    return model, takes_segments


@keras.saving.register_keras_serializable(package="videotag")
class TransformerTitleEncoder(keras.layers.Layer):
    """A keras-hub backbone after its token embedding, over title token embeddings.

    Runs the backbone's own graph from its token embeddings (position and segment
    embeddings, normalisation, dropout, transformer layers with the padding mask;
    segment ids 0) and returns one of:
    - "pooled": the backbone's pooled output (BERT: tanh dense over [CLS]);
    - "cls": the sequence output at position 0 ([CLS]);
    - "textcnn": a `TextCNN` over the sequence output of the real tokens ([CLS]
      and [SEP] included), as MultimodalVideoTag (seed 001) puts one over ERNIE;
    then dropout.

    Paths: the part of the backbone is `<name>/transformer` (a Keras model), its
    layers `<name>/transformer/<layer>` when the backbone was built in
    `backbone_scope(name)` (as `videotag.models.title` and `from_config` do).

    Args:
        backbone: a keras-hub backbone (its weights are used as they are), or its
            `keras.saving` config (a new backbone of that architecture is made).
        output: "pooled", "cls" or "textcnn".
        textcnn: TextCNN arguments (windows, filters, activation, alignment) for
            output "textcnn".
        dropout: rate on the output vector.
    Call args:
        embeddings: float [B, L, H], the backbone's token embeddings of the ids.
        mask: bool [B, L], True for real tokens.
    Shapes:
        -> [B, H] (pooled, cls) or [B, filters * len(windows)] (textcnn).
    """

    def __init__(self, backbone: Any = None, output: str = "pooled",
                 textcnn: Optional[Dict[str, Any]] = None, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if output not in OUTPUTS:
            raise ConfigError(f"unknown transformer output '{output}' (valid: {', '.join(OUTPUTS)})")
        keras_hub()  # the backbone's classes are keras-hub's
        if isinstance(backbone, dict):
            with backbone_scope(self.name):
                backbone = _deserialize_backbone(backbone, self.dtype_policy)
        if backbone is None:
            raise ValueError("TransformerTitleEncoder needs a keras-hub backbone")
        self.backbone_config = keras.saving.serialize_keras_object(backbone)
        self.hidden_dim = int(backbone.token_embedding.output_dim)
        with keras.name_scope(self.name):
            self.transformer, self.takes_segments = backbone_tail(backbone)
        self.output_kind = output
        self.textcnn_args = dict(textcnn or {})
        self.dropout = float(dropout)
        self.textcnn = (TextCNN(**self.textcnn_args, name="textcnn", dtype=self.dtype_policy)
                        if output == "textcnn" else None)
        self.drop = layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, embeddings_shape, mask_shape=None):
        if self.textcnn is not None:
            self.textcnn.build((None, None, self.hidden_dim))

    def call(self, embeddings, mask, training=None):
        padding = ops.cast(mask, "int32")
        inputs = [embeddings, padding] + ([ops.zeros_like(padding)] if self.takes_segments else [])
        outputs = self.transformer(inputs, training=training)
        if self.output_kind == "pooled":
            x = outputs["pooled_output"]
        elif self.output_kind == "cls":
            x = outputs["sequence_output"][:, 0, :]
        else:
            x = self.textcnn(outputs["sequence_output"], mask)
        return self.drop(x, training=training)

    def compute_output_shape(self, embeddings_shape, mask_shape=None):
        if self.textcnn is not None:
            return self.textcnn.compute_output_shape(embeddings_shape)
        return (embeddings_shape[0], self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone_config,
                "output": self.output_kind, "textcnn": dict(self.textcnn_args),
                "dropout": self.dropout}


def _deserialize_backbone(config: Dict[str, Any], policy) -> keras.Model:
    """A new backbone of a serialized one's architecture, under `policy`."""
    config = {**config, "config": {**config["config"],
                                   "dtype": keras.saving.serialize_keras_object(policy)}}
    return keras.saving.deserialize_keras_object(config)


def seed001_textcnn() -> TextCNNParams:
    """The TextCNN that MultimodalVideoTag puts over ERNIE (seed 001, models/ernie.py
    `textcnn`): windows 2, 3, 4, 256 filters, tanh, centred windows (paddle's
    sequence_conv), max over the real tokens."""
    return TextCNNParams(windows=[2, 3, 4], filters=256, activation="tanh", alignment="center")


@dataclass
class TransformerParams:
    """Parameters of the `transformer` text encoder (see `TransformerTitleEncoder`).

    Attributes:
        preset: a local keras-hub preset folder (config.json, model.weights.h5,
            tokenizer.json, assets/tokenizer/vocabulary.txt) of a BERT-family
            backbone and its tokenizer. `model.text.max_length` is the number of
            ids per title, [CLS] and [SEP] included.
        output: "pooled" (the backbone's pooled output), "cls" (the [CLS] vector
            of the sequence output) or "textcnn" (a TextCNN over the sequence
            output, seed 001).
        textcnn: the TextCNN of output "textcnn" (default: seed 001's).
        dropout: rate on the encoder's output vector.
        freeze: keep the pretrained part fixed in training (`title_embedding` and
            the transformer; the TextCNN still trains), through `train.freeze`'s
            mechanism; seed 001's `ernie_freeze`.
    """

    preset: str = ""
    output: str = "pooled"
    textcnn: TextCNNParams = field(default_factory=seed001_textcnn)
    dropout: float = 0.1
    freeze: bool = False

    def validate(self, path: str) -> None:
        """A preset is named, a known output, dropout in [0, 1) (ConfigError naming the key)."""
        if not self.preset:
            raise ConfigError(f"config key '{path}.preset' is empty: name a keras-hub preset "
                              "folder (README: Pretrained text encoders)")
        engine.check_choice(f"{path}.output", self.output, OUTPUTS)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"config key '{path}.dropout' must be in [0, 1), got {self.dropout}")

    def frozen_layers(self) -> List[str]:
        """The layer paths that `freeze` keeps fixed (patterns of `train.freeze`)."""
        return ["title_embedding", "title_encoder/transformer"] if self.freeze else []


PRESET_FILES = ("config.json", "tokenizer.json")


def load_preset(preset: str, sequence_length: int, key: str = "model.text.encoder.preset",
                encoder_name: str = "title_encoder"):
    """The backbone (with its weights) and the title tokenizer layer of a preset folder.

    Built under the current dtype policy and distribution strategy, in
    `backbone_scope(encoder_name)`.

    Returns:
        (backbone, tokenizer): the keras-hub backbone and a `PresetTitleTokenizer`
        named `title_tokens`.

    Raises:
        ConfigError: the folder or one of its files is missing, or
            `sequence_length` exceeds the backbone's maximum.
    """
    hub = keras_hub()
    if not os.path.isdir(preset):
        raise ConfigError(f"config key '{key}' names a preset folder that does not exist: {preset}")
    for name in PRESET_FILES:
        if not os.path.isfile(os.path.join(preset, name)):
            raise ConfigError(f"config key '{key}': {preset} is not a keras-hub preset folder "
                              f"(no {name}; README: Pretrained text encoders)")
    with backbone_scope(encoder_name):
        backbone = hub.models.Backbone.from_preset(preset, dtype=keras.config.dtype_policy())
    limit = getattr(backbone, "max_sequence_length", None)
    if limit is not None and sequence_length > limit:
        raise ConfigError(f"config key 'model.text.max_length' is {sequence_length}, more than "
                          f"the {limit} positions of the backbone in {preset}")
    tokenizer = hub.tokenizers.Tokenizer.from_preset(preset)
    return backbone, PresetTitleTokenizer(tokenizer, sequence_length=sequence_length,
                                          name="title_tokens")


def build_transformer_encoder(params: TransformerParams, name: str,
                              backbone: Optional[keras.Model] = None) -> TransformerTitleEncoder:
    """The `transformer` encoder of TEXT_ENCODERS over `backbone` (default: the
    preset's, with its weights)."""
    if backbone is None:
        backbone, _ = load_preset(params.preset, 3, encoder_name=name)
    textcnn = engine.to_dict(params.textcnn)
    return TransformerTitleEncoder(backbone, params.output, textcnn, params.dropout, name=name)


TEXT_ENCODERS.register(TRANSFORMER, TransformerParams)(build_transformer_encoder)
