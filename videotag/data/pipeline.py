"""The tf.data input pipeline over YT8M shards, and the model inputs of its batches.

Records are read from the shards (`videotag.data.shards`), batched, and each batch
parsed, checked and its frames decoded to uint8 at once by the one record parser
(`videotag.data.parsing`). Where a batch cannot be made before the parse (records
dropped by `data.on_bad_record=skip`, `data.length_buckets`, segments), records are
parsed and checked in chunks, batched by video (by length), and their frames decoded
a batch at a time. A bad
record stops the pipeline with an error that
`videotag.data.tf_errors.translate_error` turns into a `DataError` naming the file,
the record index, the video id and the key; with `data.on_bad_record=skip` it is
dropped and counted by reason (`SkipCounter`), a key of the wrong value type included. Frame features stay uint8 until the
model dequantizes them.

With `data.segment_labels` the records' segment ratings are read too
(`videotag.data.segments`): training batches are then rated segments, evaluation
batches are videos with their ratings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

import tensorflow as tf

from videotag.data import schema
from videotag.data.record_types import check_record_type
from videotag.data.frames import decode_frames
from videotag.data.parsing import RecordParser
from videotag.data.segments import LABEL_WEIGHTS_KEY, rated_segments
from videotag.data.shards import keep_record, list_files, read_shard
from videotag.data.skips import SkipCounter
from videotag.data.tf_errors import fail_on_bad_records

if TYPE_CHECKING:
    from videotag.config import DataConfig

# Records parsed at once where batches are not parsed whole (records dropped by
# `on_bad_record=skip`, length buckets, segments): one parse op and one set of checks
# per chunk instead of per record (16 to 64 measure alike); the chunk is split into
# videos again, each frame feature one string of bytes, and decoded once batched.
PARSE_CHUNK = 64


def make_dataset(
    cfg: "DataConfig",
    pattern: str,
    batch_size: int,
    training: bool,
    seed: Optional[int] = None,
    skip_counter: Optional[SkipCounter] = None,
    repeat: bool = False,
    bucket: bool = True,
    num_shards: int = 1,
    shard_index: int = 0,
    deterministic: Optional[bool] = None,
    segments: Optional[str] = None,
) -> tf.data.Dataset:
    """The tf.data pipeline over a glob of shards.

    Elements are dicts of batched tensors: `video_id` string [B], each feature uint8
    [B, T, size] (T = longest video of the batch, or max_frames with
    `pad_to_max_frames`), `num_frames` int32 [B], `labels` float32 multi-hot
    [B, num_classes]; with `data.use_title` also `title` string [B], with
    `data.num_categories` also `category` int32 [B]. Video-level records give
    float32 [B, size] features instead.

    Args:
        cfg: data config.
        pattern: glob (or comma-separated globs) of TFRecord shards.
        batch_size: videos per batch; the last batch may be smaller.
        training: shuffle files and records.
        seed: shuffle seed.
        skip_counter: where dropped records are counted when on_bad_record=skip.
        repeat: repeat the data forever (the caller bounds the steps).
        bucket: group videos by length when `data.length_buckets` is set (this
            changes the order of videos; prediction keeps the file order).
        num_shards: read only one part in `num_shards` of the data (one worker's
            share in multi-worker training): whole files when there are at least
            as many files as shards, else every `num_shards`-th record of each
            file (every worker then reads all files but parses its own records).
        shard_index: which part, in [0, num_shards).
        deterministic: the same order on every run with the same seed (training
            is otherwise free to reorder records read in parallel); default: true
            unless `training`.
        segments: "" (videos), "rated" (the rated segments of the records, each an
            element: frames of up to `data.segment_size` frames, `num_frames`,
            `video_id`, `segment_start_time`, `labels` with the rated scores and
            `label_weights` 1 where a class is rated) or "videos" (videos, with
            their ratings `segment_labels`, `segment_start_times` and
            `segment_scores` as ragged [B, (pairs)]); default "" without
            `data.segment_labels`, else "rated" when `training`, "videos" when not.
            Neither segment mode groups by length.

    Raises:
        DataError: the pattern matches no file, or its first record is of the other
            kind (frame-level or video-level) than `data.record_type`.
    """
    files = list_files(pattern)
    check_record_type(cfg, files)
    if segments is None:
        segments = ("rated" if training else "videos") if cfg.segment_labels else ""
    skip = cfg.on_bad_record == "skip"
    if skip and skip_counter is None:
        skip_counter = SkipCounter()

    sizes = [tf.io.gfile.stat(f).length if skip else 0 for f in files]
    file_ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64)))
    by_file = num_shards > 1 and len(files) >= num_shards
    if by_file:
        file_ds = file_ds.shard(num_shards, shard_index)
    if deterministic is None:
        deterministic = not training
    if training:
        file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    ds = file_ds.interleave(
        lambda filename, size: read_shard(filename, size, skip),
        cycle_length=max(1, min(cfg.num_parallel_reads, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if num_shards > 1 and not by_file:
        # records by their index in their file; the end-of-shard markers (index < 0)
        # of skip mode go to every worker
        ds = ds.filter(lambda record, filename, index:
                       (index < 0) | (index % num_shards == shard_index))
    if training:
        ds = ds.shuffle(cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if skip:
        ds = ds.filter(lambda record, filename, index: keep_record(record, filename, index,
                                                                    skip_counter))
    if not skip and not segments and not (cfg.length_buckets and bucket):
        # the common run: each batch parsed, checked and its frames decoded by one
        # map call, from the serialized records to uint8 frames (no per-record step)
        if repeat:
            ds = ds.repeat()
        parser = RecordParser(cfg, check_types=False, frames="uint8")
        ds = ds.batch(batch_size).map(_parse_chunk(parser, None),
                                      num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=deterministic)
        return ds.prefetch(tf.data.AUTOTUNE)
    # a record of the wrong value types fails its chunk unless skipped (checking the
    # types costs about as much as parsing, so it is paid only where a record is dropped)
    parser = RecordParser(cfg, segments=bool(segments), check_types=skip)
    ds = ds.batch(PARSE_CHUNK).map(_parse_chunk(parser, skip_counter if skip else None),
                                   num_parallel_calls=tf.data.AUTOTUNE,
                                   deterministic=deterministic)
    if segments == "rated":
        ds = ds.map(lambda features: rated_segments(features, cfg),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.unbatch()  # videos (or segments) again, each frame feature one string of bytes
    if segments == "rated" and training:  # a video's segments would come together
        ds = ds.shuffle(cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if segments == "videos":
        ds = ds.ragged_batch(batch_size)
    elif cfg.length_buckets and bucket and cfg.record_type == "frame" and not segments:
        ds = ds.bucket_by_sequence_length(
            lambda f: f[schema.NUM_FRAMES_KEY],
            bucket_boundaries=[b + 1 for b in cfg.length_buckets],
            bucket_batch_sizes=[batch_size] * (len(cfg.length_buckets) + 1),
        )
    else:
        ds = ds.batch(batch_size)
    if cfg.record_type == "frame":
        padded = cfg.segment_size if segments == "rated" else cfg.max_frames
        ds = ds.map(_frame_decoder(cfg, padded), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=deterministic)
    return ds.prefetch(tf.data.AUTOTUNE)


def _parse_chunk(parser: RecordParser, skip_counter: Optional[SkipCounter]):
    """The map function of a chunk (or a whole batch) of (records, filenames,
    indexes): its checked features, named "<file>: record <index>" in messages. A bad
    record fails the chunk, or with a `skip_counter` is counted and dropped."""

    def parse(records, filenames, indexes):
        names = tf.strings.join([filenames, ": record ", tf.strings.as_string(indexes)])
        parsed = parser.parse(records, names)
        features, bad, errors = parsed.features, parsed.bad, parsed.errors
        if skip_counter is None:
            return fail_on_bad_records(features, bad, errors)
        skip_counter.add(bad)
        good = tf.logical_not(tf.reduce_any(bad, axis=1))
        return {k: tf.ragged.boolean_mask(v, good) if isinstance(v, tf.RaggedTensor)
                else tf.boolean_mask(v, good) for k, v in features.items()}

    return parse


def _frame_decoder(cfg: "DataConfig", padded: int):
    """The map function that turns a batch's frame bytes into uint8 [B, T, size],
    T = its longest video (or `padded` frames with `pad_to_max_frames`)."""

    def decode(batch):
        steps = (padded if cfg.pad_to_max_frames
                 else tf.reduce_max(batch[schema.NUM_FRAMES_KEY]))
        batch = dict(batch)
        for name, size in zip(cfg.feature_names, cfg.feature_sizes):
            batch[name] = decode_frames(batch[name], steps, size)
        return batch

    return decode


def model_inputs(cfg: "DataConfig", batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The subset of a batch that models take as inputs."""
    keys = list(cfg.feature_names)
    if cfg.record_type == "frame":
        keys.append(schema.NUM_FRAMES_KEY)
    if cfg.use_title:
        keys.append(schema.TITLE_KEY)
    return {k: batch[k] for k in keys}


def input_signature(cfg: "DataConfig") -> Dict[str, tf.TensorSpec]:
    """TensorSpecs of `model_inputs`: one trace serves every batch size and length."""
    if cfg.record_type == "frame":
        specs = {n: tf.TensorSpec([None, None, s], tf.uint8, name=n)
                 for n, s in zip(cfg.feature_names, cfg.feature_sizes)}
        specs[schema.NUM_FRAMES_KEY] = tf.TensorSpec([None], tf.int32, name=schema.NUM_FRAMES_KEY)
    else:
        specs = {n: tf.TensorSpec([None, s], tf.float32, name=n)
                 for n, s in zip(cfg.feature_names, cfg.feature_sizes)}
    if cfg.use_title:
        specs[schema.TITLE_KEY] = tf.TensorSpec([None], tf.string, name=schema.TITLE_KEY)
    return specs


def targets(batch: Dict[str, tf.Tensor], tasks=("tags",)) -> Dict[str, tf.Tensor]:
    """The training targets of a batch by output name: `tags` multi-hot float32
    [B, num_classes] (for rated segments: the rated scores, and `tag_weights` 1
    where a class is rated) and/or `category` int32 [B]."""
    out = {}
    if "tags" in tasks:
        out["tags"] = batch[schema.LABELS_KEY]
        if LABEL_WEIGHTS_KEY in batch:
            out["tag_weights"] = batch[LABEL_WEIGHTS_KEY]
    if "category" in tasks:
        out["category"] = batch[schema.CATEGORY_KEY]
    return out


def for_keras(cfg: "DataConfig", ds: tf.data.Dataset, tasks=("tags",)) -> tf.data.Dataset:
    """Maps batches to (inputs, targets) pairs for `keras.Model.fit`."""
    return ds.map(
        lambda b: (model_inputs(cfg, b), targets(b, tasks)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
