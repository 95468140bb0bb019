"""A small BERT preset with random weights, for the transformer title encoder's mechanics.

Pretrained weights are a download away (see the README, "Pretrained text
encoders"); this writes a keras-hub preset folder of the same layout whose
vocabulary is learned from titles (keras-hub's WordPiece trainer: CJK characters
one token each, English words and word pieces) and whose weights are random. A
model trained on it checks that the path works; it is no pretrained encoder.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Union

import keras
import tensorflow as tf

from videotag.errors import ConfigError
from videotag.layers.text_transformer import keras_hub

# BERT's special tokens; [PAD] first, so that padding is id 0 as in BERT vocabularies
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass
class TinyBertSizes:
    """Sizes of the random BERT (keras-hub `BertBackbone` arguments)."""

    vocabulary_size: int = 400
    num_layers: int = 2
    num_heads: int = 2
    hidden_dim: int = 32
    intermediate_dim: int = 64
    max_sequence_length: int = 64
    dropout: float = 0.1


def make_random_bert_preset(output_dir: Union[str, Path],
                            titles: Union[tf.data.Dataset, Iterable[str]],
                            sizes: TinyBertSizes = TinyBertSizes(), seed: int = 0) -> List[str]:
    """Writes a keras-hub BERT preset folder: a WordPiece vocabulary learned from
    `titles` (lowercased) and a `BertBackbone` of `sizes` with random weights.

    The folder is written under a temporary name and renamed when complete.

    Args:
        output_dir: the preset folder to make; it must not exist yet.
        titles: the texts to learn the vocabulary from (a dataset of strings, or
            strings).
        sizes: the backbone's sizes; `vocabulary_size` is an upper bound.
        seed: seed of the random weights.

    Returns:
        The vocabulary, in id order.

    Raises:
        ConfigError: `output_dir` exists.
    """
    hub = keras_hub()
    target = Path(output_dir)
    if target.exists():
        raise ConfigError(f"{target} exists: give a new folder for the preset")
    if not isinstance(titles, tf.data.Dataset):
        titles = tf.data.Dataset.from_tensor_slices(tf.constant(list(titles) or [""], tf.string))
    vocabulary = hub.tokenizers.compute_word_piece_vocabulary(
        titles.batch(1024), sizes.vocabulary_size, lowercase=True,
        reserved_tokens=SPECIAL_TOKENS)
    tokenizer = hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    keras.utils.set_random_seed(seed)
    backbone = hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=sizes.num_layers, num_heads=sizes.num_heads,
        hidden_dim=sizes.hidden_dim, intermediate_dim=sizes.intermediate_dim,
        max_sequence_length=sizes.max_sequence_length, dropout=sizes.dropout, dtype="float32")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        backbone.save_to_preset(str(partial))
        tokenizer.save_to_preset(str(partial))
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return list(vocabulary)
