"""Title tokenisation and the title vocabulary: build, save, load, pretrained vectors.

Tokenisation is made of core TensorFlow string ops only, so the same function runs
inside the model (an exported SavedModel takes raw UTF-8 titles and needs no project
code) and here, when the vocabulary is built from the training titles: the tokens
counted are exactly the tokens the model will look up.

Modes:
- "word": lowercase, punctuation and symbols become spaces, split on whitespace.
- "char": lowercase, one token per character (Chinese titles); whitespace,
  punctuation and symbols dropped.
- "auto": as "word", but every CJK character (Han, kana, Hangul) is a token of its
  own, so mixed titles ("小猫 cat video") give characters and words.

Bytes that are not valid UTF-8 are replaced by U+FFFD, a symbol, and so dropped
(the record parser, `videotag.data.parsing`, rejects such titles before: the
pipeline and the served model refuse the record, the vocabulary pass reads "").

Vocabulary file: UTF-8, one token per line, in id order; the token on line i (from
0) has id i + 2. Id 0 is padding, id 1 out-of-vocabulary (OOV).
"""

from __future__ import annotations

import collections
import posixpath
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from videotag.data import schema
from videotag.errors import ConfigError, DataError
from videotag.files import write_text

PAD_ID, OOV_ID = 0, 1
NUM_RESERVED = 2
VOCAB_FILE = "vocab.txt"
MODES = ("auto", "word", "char")

_CJK = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
_SEPARATORS = r"[\pP\pS\pZ\pC]+"  # punctuation, symbols, separators, controls


def split_tokens(titles: tf.Tensor, mode: str = "auto") -> tf.RaggedTensor:
    """Tokens of each title: string [B] -> ragged string [B, None].

    Args:
        titles: UTF-8 strings (any bytes: invalid sequences are dropped).
        mode: "word", "char" or "auto" (see the module docstring).
    """
    if mode not in MODES:
        raise ConfigError(f"unknown tokenizer mode '{mode}' (valid: {', '.join(MODES)})")
    text = tf.strings.unicode_transcode(titles, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)
    text = tf.strings.lower(text, encoding="utf-8")
    if mode == "char":
        chars = tf.strings.unicode_split(text, "UTF-8")
        keep = ~tf.strings.regex_full_match(chars, _SEPARATORS)
        return tf.ragged.boolean_mask(chars, keep)
    if mode == "auto":
        text = tf.strings.regex_replace(text, f"({_CJK})", r" \1 ")
    text = tf.strings.regex_replace(text, _SEPARATORS, " ")
    return tf.strings.split(text)


def tokenize(titles: Sequence[str | bytes], mode: str = "auto") -> List[List[str]]:
    """Python lists of the tokens of `titles` (the model's own tokenisation)."""
    ragged = split_tokens(tf.constant(list(titles), tf.string), mode)
    return [[t.decode("utf-8") for t in row] for row in ragged.to_list()]


def select_vocabulary(counts: Dict[str, int], min_count: int = 2,
                      max_size: int = 20000) -> List[str]:
    """The tokens seen at least `min_count` times, most frequent first (ties by
    token, so the result does not depend on the data's order), at most `max_size`."""
    kept = [(t, c) for t, c in counts.items() if c >= min_count and t]
    kept.sort(key=lambda tc: (-tc[1], tc[0]))
    return [t for t, _ in kept[:max_size]]


def title_dataset(data_cfg, pattern: str) -> tf.data.Dataset:
    """The titles of the records of `pattern` in file order, as the model sees them:
    "" when absent or bad (not one valid UTF-8 value), by the data's record parser.

    Only the title is read (no frames), so a pass is fast.
    """
    from videotag.data.parsing import RecordParser
    from videotag.data.shards import list_files, read_shard

    files = list_files(pattern)
    parser = RecordParser(data_cfg, features=[], title=True, targets=False)

    def titles(records, filenames, indexes):
        names = tf.strings.join([filenames, ": record ", tf.strings.as_string(indexes)])
        return parser.parse(records, names).features[schema.TITLE_KEY]

    records = tf.data.Dataset.from_tensor_slices(files).flat_map(
        lambda filename: read_shard(filename, 0, skip_corrupt=False))
    return records.batch(1024).map(titles, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def build_vocabulary(data_cfg, pattern: str, mode: str = "auto", min_count: int = 2,
                     max_size: int = 20000) -> Tuple[List[str], Dict[str, int]]:
    """Vocabulary of the titles of the records of `pattern`.

    Returns:
        (tokens, stats): the tokens in id order (id = index + 2) and counts of the
        pass: `titles`, `empty_titles`, `distinct_tokens`, `token_count`,
        `covered` (tokens of the titles that are in the vocabulary).

    Raises:
        DataError: unreadable records (naming the file).
    """
    from videotag.data.shards import list_files
    from videotag.data.tf_errors import data_errors

    files = list_files(pattern)
    titles = title_dataset(data_cfg, pattern)
    counts: collections.Counter = collections.Counter()
    num = empty = 0
    with data_errors(files):
        for batch in titles.batch(1024):
            tokens = split_tokens(batch, mode)
            num += int(batch.shape[0])
            empty += int(tf.reduce_sum(tf.cast(tokens.row_lengths() == 0, tf.int32)))
            counts.update(t.decode("utf-8") for t in tokens.flat_values.numpy().tolist())
    tokens = select_vocabulary(counts, min_count, max_size)
    stats = {
        "titles": num,
        "empty_titles": empty,
        "distinct_tokens": len(counts),
        "token_count": sum(counts.values()),
        "covered": sum(counts[t] for t in tokens),
    }
    return tokens, stats


def save_vocabulary(tokens: Sequence[str], path: str | Path) -> None:
    """Writes one token per line (UTF-8) to `path` on any file system `tf.io.gfile`
    reaches, whole or not at all (`videotag.files.write_text`)."""
    for t in tokens:
        if not t or any(c in t for c in "\r\n"):
            raise ValueError(f"vocabulary token {t!r} is empty or holds a line break")
    write_text(str(path), "".join(t + "\n" for t in tokens), "vocabulary file")


def load_vocabulary(path: str | Path, key: str = "model.text.vocab_file") -> List[str]:
    """Tokens of a vocabulary file, in id order.

    Raises:
        ConfigError: the file (named by config key `key`) is missing or unreadable.
        DataError: the file is not UTF-8 or repeats a token.
    """
    path = str(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise ConfigError(f"config key '{key}' names a vocabulary file that does not exist: "
                          f"{path}")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: the vocabulary file is not UTF-8 text ({exc})") from None
    except (OSError, tf.errors.OpError) as exc:
        raise ConfigError(f"config key '{key}': cannot read {path}: {exc}") from None
    tokens = [line.rstrip("\r") for line in text.split("\n")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    seen: Dict[str, int] = {}
    for i, t in enumerate(tokens):
        if not t:
            raise DataError(f"{path}: line {i + 1} is empty (one token per line)")
        if t in seen:
            raise DataError(f"{path}: line {i + 1} repeats the token {t!r} of line {seen[t] + 1}")
        seen[t] = i
    return tokens


def load_word2vec(path: str | Path, tokens: Sequence[str], dim: int, seed: int = 0,
                  key: str = "model.text.pretrained_embeddings") -> Tuple[np.ndarray, int]:
    """Embedding matrix [len(tokens) + 2, dim] from a word2vec text file (on any file
    system `tf.io.gfile` reaches).

    The file's first line is "count dim", then one "word v1 ... v_dim" per line.
    Vocabulary tokens found in the file (exactly, or else by their lowercase form)
    take its vectors; the others, and the OOV row, are drawn at random with the
    scale of the found vectors; the padding row is zero.

    Returns:
        (matrix float32, hits): hits is the number of vocabulary tokens found.

    Raises:
        ConfigError: the file is missing, or its vectors are not `dim`-dimensional.
        DataError: a malformed line (naming the file and line).
    """
    path = str(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise ConfigError(f"config key '{key}' names a file that does not exist: {path}")
    index = {t: i + NUM_RESERVED for i, t in enumerate(tokens)}
    matrix = np.zeros((len(tokens) + NUM_RESERVED, dim), np.float32)
    found = np.zeros(len(matrix), bool)
    try:
        with tf.io.gfile.GFile(path, "r") as f:  # UTF-8, on any file system
            header = f.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise DataError(f"{path}: line 1 must be 'count dim' (word2vec text format), "
                                f"got {' '.join(header)[:60]!r}")
            if int(header[1]) != dim:
                raise ConfigError(
                    f"{path} holds {header[1]}-dimensional vectors but "
                    f"'model.text.embedding_dim' is {dim}: make them equal")
            for number, line in enumerate(f, start=2):
                parts = line.rstrip("\n").rstrip("\r").split(" ")
                if parts and parts[-1] == "":
                    parts.pop()
                if not parts or parts == [""]:
                    continue
                if len(parts) != dim + 1:
                    raise DataError(f"{path}: line {number}: expected a word and {dim} values, "
                                    f"got {len(parts) - 1} values")
                word = parts[0]
                i = index.get(word)
                if i is None or found[i]:
                    i = index.get(word.lower())
                    if i is None or found[i]:
                        continue
                try:
                    matrix[i] = np.asarray(parts[1:], np.float32)
                except ValueError:
                    raise DataError(f"{path}: line {number}: a value is not a number") from None
                found[i] = True
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (the binary word2vec format is not read: "
                        "convert it to the text format)") from None
    hits = int(found.sum())
    scale = float(matrix[found].std()) if hits > 1 else 0.05
    rng = np.random.default_rng(seed)
    missing = ~found
    missing[PAD_ID] = False
    matrix[missing] = rng.normal(0.0, scale or 0.05, (int(missing.sum()), dim))
    return matrix, hits


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (local paths resolved; others compared as
    written)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def prepare_vocabulary(cfg, model_dir: str | Path, verbose: bool = True) -> Optional[str]:
    """Puts the title vocabulary of a run into `model_dir` before the model is built.

    For models with a `text` section when `data.use_title` is on (`model_dir` on
    any file system `tf.io.gfile` reaches): the vocabulary file the config names is
    copied to `<model_dir>/vocab.txt` (its tokens, as read); without one, the
    vocabulary is built from the training titles (`vocab_min_count`,
    `vocab_max_size`) and written there. `cfg.model.text.vocab_file` then points to
    that file, so the saved config and the model carry it.

    Returns:
        The vocabulary path, or None when the model reads no titles or its text
        encoder brings its own vocabulary (a pretrained transformer's preset).

    Raises:
        ConfigError: a vocabulary file named in the config does not exist.
    """
    text = getattr(cfg.model, "text", None)
    if text is None or not cfg.data.use_title or text.pretrained_encoder:
        return None
    target = posixpath.join(str(model_dir), VOCAB_FILE)  # keeps a scheme:// prefix
    if text.vocab_file:
        tokens = load_vocabulary(text.vocab_file)
        if not _same_file(text.vocab_file, target):
            save_vocabulary(tokens, target)
        message = f"title vocabulary: {len(tokens)} tokens from {text.vocab_file}"
    else:
        tokens, stats = build_vocabulary(cfg.data, cfg.data.train_data_pattern, text.tokenizer,
                                         text.vocab_min_count, text.vocab_max_size)
        save_vocabulary(tokens, target)
        share = stats["covered"] / max(1, stats["token_count"])
        message = (
            f"title vocabulary: {len(tokens)} tokens (of {stats['distinct_tokens']} distinct, "
            f"min count {text.vocab_min_count}) from {stats['titles']} training titles "
            f"({stats['empty_titles']} empty), covering {share:.1%} of their tokens")
    text.vocab_file = str(target)
    if verbose:
        print(f"{message}; saved to {target}", file=sys.stderr)
        if text.pretrained_embeddings:
            _, hits = load_word2vec(text.pretrained_embeddings, tokens, text.embedding_dim)
            print(f"pretrained embeddings: {hits} of {len(tokens)} vocabulary tokens found in "
                  f"{text.pretrained_embeddings}", file=sys.stderr)
    return target
