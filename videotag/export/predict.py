"""Predictions from a model directory or a SavedModel, streamed to CSV or JSON.

Both sources yield the same rows: `(video_id, [(class_id, class_name, probability),
...])`, the top-k classes of each video by probability. Memory stays flat: one batch
is held at a time and each row is written as soon as it is predicted.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Iterator, List, Optional, Tuple

import tensorflow as tf

from videotag.data import schema
from videotag.data.labels import load_label_names
from videotag.data.reader import (
    SkipCounter,
    input_signature,
    list_files,
    make_dataset,
    model_inputs,
    translate_error,
)
from videotag.errors import DataError, ModelError

Row = Tuple[str, List[Tuple[int, str, float]]]


def _rows(ids, indexes, scores, names) -> Iterator[Row]:
    for vid, idx, score, name in zip(ids, indexes, scores, names):
        tags = [
            (int(i), n.decode("utf-8") if isinstance(n, bytes) else str(n), float(s))
            for i, s, n in zip(idx, score, name)
        ]
        yield (vid.decode("utf-8", "replace") if isinstance(vid, bytes) else str(vid)), tags


def predict_from_model_dir(model_dir: str, pattern: str, top_k: int = 20,
                           batch_size: Optional[int] = None,
                           on_bad_record: Optional[str] = None) -> Iterator[Row]:
    """Rows from a trained model directory (Keras model, validated records).

    `on_bad_record` ("error" or "skip") overrides the run's `data.on_bad_record`.
    """
    from videotag.training.trainer import load_trained

    cfg, model = load_trained(model_dir)
    cfg.data.on_bad_record = on_bad_record or cfg.data.on_bad_record
    files = list_files(pattern)
    names = tf.constant(load_label_names(cfg.data.label_file, cfg.data.num_classes))
    k = min(top_k, cfg.data.num_classes)

    @tf.function(input_signature=[input_signature(cfg.data)])
    def step(inputs):
        scores, indexes = tf.math.top_k(model(inputs, training=False)["tags"], k=k)
        return indexes, scores, tf.gather(names, indexes)

    skips = SkipCounter() if cfg.data.on_bad_record == "skip" else None
    ds = make_dataset(cfg.data, pattern, batch_size or cfg.eval.batch_size, training=False,
                      skip_counter=skips, bucket=False)
    try:
        for batch in ds:
            indexes, scores, labels = step(model_inputs(cfg.data, batch))
            yield from _rows(batch[schema.VIDEO_ID_KEY].numpy(), indexes.numpy(),
                             scores.numpy(), labels.numpy())
    except tf.errors.OpError as exc:
        error = translate_error(exc, files)
        if error is None:
            raise
        raise error from None
    if skips is not None and skips.total():
        print(f"prediction input: {skips.summary()}", file=sys.stderr)


def predict_from_saved_model(path: str, pattern: str, top_k: int = 20,
                             batch_size: int = 256) -> Iterator[Row]:
    """Rows from an exported SavedModel's `serving_default` on raw serialized records."""
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as exc:
        raise ModelError(f"{path}: not a loadable SavedModel ({exc})") from None
    serve = loaded.signatures["serving_default"]
    files = list_files(pattern)
    for path_ in files:
        records = tf.data.TFRecordDataset(path_).enumerate().batch(batch_size)
        try:
            for index, batch in records:
                try:
                    out = serve(example_bytes=batch)
                except tf.errors.InvalidArgumentError as exc:
                    first = int(index[0].numpy())
                    raise DataError(
                        f"{path_}: records {first}..{first + len(index) - 1}: the model "
                        f"rejected the batch: {exc.message.splitlines()[0]}"
                    ) from None
                k = min(top_k, out["class_indexes"].shape[1])
                yield from _rows(out["video_id"].numpy(), out["class_indexes"].numpy()[:, :k],
                                 out["predictions"].numpy()[:, :k],
                                 out["class_names"].numpy()[:, :k])
        except tf.errors.DataLossError:
            raise DataError(f"{path_}: the shard is corrupt or truncated (CRC check failed)") from None


def write_predictions(rows: Iterator[Row], out: IO[str], fmt: str, threshold: float = 0.0,
                      verbose: bool = True) -> int:
    """Writes rows as the Kaggle CSV (`csv`) or the VideoTag JSON list (`json`).

    CSV: header `VideoId,LabelConfidencePairs`, then `id,class score class score ...`.
    JSON: `[[id, {"class_name", "probability", "class_id"}, ...], ...]`.
    Classes with probability below `threshold` are left out. Returns the row count.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown prediction format '{fmt}' (valid: csv, json)")
    count, start, last = 0, time.time(), time.time()
    out.write("VideoId,LabelConfidencePairs\n" if fmt == "csv" else "[")
    for video_id, tags in rows:
        tags = [t for t in tags if t[2] >= threshold]
        if fmt == "csv":
            pairs = " ".join(f"{cid} {prob:.6f}" for cid, _, prob in tags)
            out.write(f"{video_id},{pairs}\n")
        else:
            entry = [video_id] + [
                {"class_name": name, "probability": round(prob, 6), "class_id": cid}
                for cid, name, prob in tags
            ]
            out.write(("\n" if count == 0 else ",\n") + json.dumps(entry, ensure_ascii=False))
        count += 1
        if verbose and time.time() - last > 10:
            last = time.time()
            print(f"  predicted {count} videos ({count / (last - start):.0f}/s)", file=sys.stderr)
    if fmt == "json":
        out.write("\n]\n")
    return count
