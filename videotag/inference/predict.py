"""Predictions from a model directory or a SavedModel (`videotag.inference.writers`
writes them as CSV, JSON or JSON Lines).

Both sources give batches shaped like the `serving_default` outputs (NumPy arrays:
`video_id`, `class_indexes`, `predictions`, `class_names`, `category_*`,
`embedding`), and from them `Prediction` rows: the video id, its top-k tags as
`(class_id, class_name, probability)` and, when the model has a category head, its
category as `(category_id, category_name, probability)`. Memory stays flat: one batch
is held at a time: batches and rows are generated as the writer asks for them.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from videotag.data import (
    SkipCounter,
    data_errors,
    input_signature,
    list_files,
    make_dataset,
    model_inputs,
    schema,
)
from videotag.data.record_types import check_record_type
from videotag.data.tf_errors import describe_parse_failure
from videotag.errors import DataError, ModelError

Batch = Dict[str, np.ndarray]


class Prediction(NamedTuple):
    """One video's prediction.

    Attributes:
        video_id: the record's id.
        tags: (class id, class name, probability) of the top-k tags, descending;
            None when the model has no tags head.
        category: (category id, name, probability) of the most probable category;
            None when the model has no category head.
    """

    video_id: str
    tags: Optional[List[Tuple[int, str, float]]]
    category: Optional[Tuple[int, str, float]] = None


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def model_dir_batches(model_dir: str, pattern: str, top_k: int = 20,
                      batch_size: Optional[int] = None,
                      on_bad_record: Optional[str] = None,
                      checkpoint: Optional[str] = None, segments: bool = False,
                      segment_label_file: Optional[str] = None) -> Iterator[Batch]:
    """Output batches of a trained model directory on validated records, in file order.

    `on_bad_record` ("error" or "skip") overrides the run's `data.on_bad_record`;
    `checkpoint` picks the weights as for `load_trained` (default `model.keras`).
    With `segments`, the batches are shaped like the `predict_segments` outputs
    (the segment classes of `segment_label_file`, default the run's).
    """
    from videotag.training.trainer import load_trained

    cfg, model = load_trained(model_dir, checkpoint)
    return model_batches(cfg, model, pattern, top_k, batch_size, on_bad_record, segments,
                         segment_label_file)


def model_batches(cfg, model, pattern: str, top_k: int = 20, batch_size: Optional[int] = None,
                  on_bad_record: Optional[str] = None, segments: bool = False,
                  segment_label_file: Optional[str] = None) -> Iterator[Batch]:
    """Output batches of a Keras `model` with its config (a trained model, or an
    ensemble of them) on validated records, in file order; `segments` and
    `segment_label_file` as for `model_dir_batches`."""
    from videotag.export.saved_model import build_serving_module

    cfg.data.on_bad_record = on_bad_record or cfg.data.on_bad_record
    cfg.data.segment_label_file = segment_label_file or cfg.data.segment_label_file
    files = list_files(pattern)
    module = build_serving_module(model, cfg, top_k)
    def outputs(inputs):
        if segments:
            return {**module.outputs(inputs), **module.segment_outputs(inputs)}
        return module.outputs(inputs)

    step = tf.function(outputs, input_signature=[input_signature(cfg.data)])
    skips = SkipCounter() if cfg.data.on_bad_record == "skip" else None
    # records to predict carry no targets (category, segment ratings): not read
    read = dataclasses.replace(cfg.data, num_categories=0, segment_labels=False)
    ds = make_dataset(read, pattern, batch_size or cfg.eval.batch_size, training=False,
                      skip_counter=skips, bucket=False)
    with data_errors(files):
        for batch in ds:
            out = {k: v.numpy() for k, v in step(model_inputs(cfg.data, batch)).items()}
            out["video_id"] = batch[schema.VIDEO_ID_KEY].numpy()
            yield out
    if skips is not None and skips.total():
        print(f"prediction input: {skips.summary()}", file=sys.stderr)


def load_saved_model(path: str):
    """`tf.saved_model.load`, with a clear error for a folder that is not one; the ops
    of tensorflow-text are registered when the graph needs them."""
    if not tf.io.gfile.exists(f"{str(path).rstrip('/')}/saved_model.pb"):
        raise ModelError(f"{path}: no saved_model.pb here (give a version folder such as "
                         "exports/nextvlad/1)")
    try:
        return tf.saved_model.load(path)
    except (OSError, ValueError, RuntimeError, tf.errors.OpError) as exc:
        if "Op type not registered" not in str(exc):
            raise ModelError(f"{path}: not a loadable SavedModel ({exc})") from None
    # a transformer title encoder's tokenizer is tensorflow-text ops (as in TF Serving)
    try:
        import tensorflow_text  # noqa: F401  (registers its ops with TensorFlow)
    except ImportError:
        raise ModelError(f"{path}: its graph has ops of tensorflow-text (a transformer title "
                         "tokenizer): pip install 'videotag[text]'") from None
    try:
        return tf.saved_model.load(path)
    except (OSError, ValueError, RuntimeError, tf.errors.OpError) as exc:
        raise ModelError(f"{path}: not a loadable SavedModel ({exc})") from None


def saved_model_batches(path: str, pattern: str, batch_size: int = 256,
                        signature: str = "serving_default") -> Iterator[Batch]:
    """Output batches of an exported SavedModel's `signature` on raw records.

    The records must be of the model's kind (frame-level or video-level, per the
    config exported beside it): else a `DataError` says which kind they are.
    """
    signatures = load_saved_model(path).signatures
    if signature not in signatures:
        raise ModelError(f"{path}: no signature {signature} (it has {', '.join(signatures)}): "
                         "export the model again with this videotag")
    serve = signatures[signature]
    files = list_files(pattern)
    exported = _exported_config(path)
    if exported is not None:
        check_record_type(exported.data, files)
    for shard in files:
        records = tf.data.TFRecordDataset(shard).enumerate().batch(batch_size)
        try:
            for index, batch in records:
                try:
                    out = serve(example_bytes=batch)
                except tf.errors.InvalidArgumentError as exc:
                    raise DataError(
                        f"{shard}: {describe_rejection(exc.message, int(index[0]))}") from None
                yield {k: v.numpy() for k, v in out.items()}
        except tf.errors.DataLossError:
            raise DataError(f"{shard}: the shard is corrupt or truncated (CRC check failed)") from None


def _exported_config(path: str):
    """The config exported with a SavedModel (`assets.extra/`), or None without one."""
    from videotag import config as config_lib
    from videotag.export.saved_model import CONFIG_FILE, EXTRA_DIR

    saved = tf.io.gfile.join(path, EXTRA_DIR, CONFIG_FILE)
    return config_lib.load(saved) if tf.io.gfile.exists(saved) else None


def describe_rejection(message: str, first: int) -> str:
    """The serving graph's complaint about a batch of records, "record <i> (id <id>):
    <problem>", with record indexes counted from `first`, the index of the batch's
    first record in its shard."""
    text = describe_parse_failure(message)
    if text is None:
        lines = [line for line in message.splitlines() if "bad request:" in line]
        text = lines[0].strip() if lines else message.splitlines()[0]
        text = re.sub(r"^.*?assertion failed: \[(.*)\]$", r"\1", text)
        text = re.sub(r"^bad request: \d+ malformed record\(s\): ", "", text)
    return re.sub(r"record (\d+)", lambda m: f"record {first + int(m.group(1))}", text)


def rows(batches: Iterable[Batch], top_k: int = 20) -> Iterator[Prediction]:
    """`Prediction`s of output batches, keeping at most `top_k` tags per video."""
    for out in batches:
        ids = out["video_id"]
        has_tags, has_category = "class_indexes" in out, "category_id" in out
        for i, vid in enumerate(ids):
            tags = None
            if has_tags:
                tags = [(int(c), _text(n), float(p)) for c, n, p in zip(
                    out["class_indexes"][i][:top_k], out["class_names"][i][:top_k],
                    out["predictions"][i][:top_k])]
            category = None
            if has_category:
                category = (int(out["category_id"][i]), _text(out["category_name"][i]),
                            float(out["category_score"][i]))
            yield Prediction(_text(vid), tags, category)


def predict_from_model_dir(model_dir: str, pattern: str, top_k: int = 20,
                           batch_size: Optional[int] = None,
                           on_bad_record: Optional[str] = None,
                           checkpoint: Optional[str] = None) -> Iterator[Prediction]:
    """Predictions of a trained model directory (Keras model, validated records)."""
    return rows(model_dir_batches(model_dir, pattern, top_k, batch_size, on_bad_record,
                                  checkpoint), top_k)


def predict_from_model(cfg, model, pattern: str, top_k: int = 20,
                       batch_size: Optional[int] = None,
                       on_bad_record: Optional[str] = None) -> Iterator[Prediction]:
    """Predictions of a Keras model with its config (e.g. an ensemble)."""
    return rows(model_batches(cfg, model, pattern, top_k, batch_size, on_bad_record), top_k)


def predict_from_saved_model(path: str, pattern: str, top_k: int = 20,
                             batch_size: int = 256) -> Iterator[Prediction]:
    """Predictions of an exported SavedModel's `serving_default` on raw records."""
    return rows(saved_model_batches(path, pattern, batch_size), top_k)
