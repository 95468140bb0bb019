"""Parsing YT8M records and the tf.data input pipeline.

Every record is checked as it is parsed (id present, frame byte lengths, label ids in
range, at least one frame). A bad record stops the pipeline with a `DataError` that
names the file, the record index and the key, or, with `data.on_bad_record=skip`, is
dropped and counted by reason (`SkipCounter`). Frame features stay uint8 until the
model dequantizes them.
"""

from __future__ import annotations

import base64
import re
import sys
from typing import Dict, List, Optional

import tensorflow as tf

from videotag.config import DataConfig
from videotag.data import schema
from videotag.errors import DataError

_ERROR_MARK = "VIDEOTAG_DATA_ERROR"
# Reasons a record can be bad, in the order of the SkipCounter's slots.
REASONS = ("missing_id", "no_frames", "bad_frame_bytes", "label_out_of_range", "bad_title",
           "bad_category", "corrupt_shard")
# TFRecord framing per record: 8-byte length, 4-byte length CRC, data, 4-byte data CRC.
_RECORD_OVERHEAD = 16


def list_files(pattern: str) -> List[str]:
    """Files matching a glob (several globs may be joined by commas), sorted.

    Raises:
        DataError: the pattern is empty or matches no file.
    """
    if not pattern:
        raise DataError("no data pattern given")
    files: List[str] = []
    for part in (p.strip() for p in pattern.split(",")):
        if part:
            files.extend(tf.io.gfile.glob(part))
    files = sorted(set(files))
    if not files:
        raise DataError(f"no files match the data pattern '{pattern}'")
    return files


class SkipCounter:
    """Counts records dropped by `on_bad_record=skip`, per reason."""

    def __init__(self):
        self._counts = tf.Variable(
            tf.zeros([len(REASONS)], tf.int64), trainable=False, name="skipped_records"
        )

    def add(self, bad: tf.Tensor) -> None:
        """Counts one record's bad-reason flags (a bool vector, one per parse reason)."""
        bad = tf.cast(bad, tf.int64)
        self._counts.assign_add(tf.pad(bad, [[0, len(REASONS) - bad.shape[0]]]))

    def add_corrupt_shard(self) -> None:
        self._counts.assign_add(tf.one_hot(REASONS.index("corrupt_shard"), len(REASONS),
                                           dtype=tf.int64))

    def counts(self) -> Dict[str, int]:
        """Records skipped so far, per reason (only reasons that occurred)."""
        values = self._counts.numpy().tolist()
        return {r: int(v) for r, v in zip(REASONS, values) if v}

    def total(self) -> int:
        return int(self._counts.numpy().sum())

    def summary(self) -> str:
        counts = self.counts()
        if not counts:
            return "no records skipped"
        shards = counts.pop("corrupt_shard", 0)
        parts = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items()]
        text = f"skipped {sum(counts.values())} bad records ({', '.join(parts)})" if parts else ""
        if shards:
            text += ("; " if text else "") + (
                f"{shards} corrupt shard(s) read up to the damage, the rest unreadable"
            )
        return text


class RecordParser:
    """Parses and validates one serialized YT8M record.

    Args:
        cfg: the data config (record type, id key, features, classes, max frames).
    """

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg
        self._id_keys = list(dict.fromkeys([cfg.id_key, "id", "video_id"]))

    def _context_spec(self):
        spec = {k: tf.io.VarLenFeature(tf.string) for k in self._id_keys}
        spec[schema.LABELS_KEY] = tf.io.VarLenFeature(tf.int64)
        if self.cfg.use_title:
            spec[self.cfg.title_key] = tf.io.VarLenFeature(tf.string)
        if self.cfg.num_categories:
            spec[self.cfg.category_key] = tf.io.VarLenFeature(tf.int64)
        return spec

    def parse(self, serialized: tf.Tensor, filename: tf.Tensor, index: tf.Tensor):
        """Returns (features dict, bad-reason bool vector, error message string).

        The bad-reason vector has one flag per entry of `REASONS`; the message names
        the file, record index, video id and every problem found (empty when good).
        """
        cfg = self.cfg
        if cfg.record_type == "frame":
            context, lists = tf.io.parse_single_sequence_example(
                serialized,
                context_features=self._context_spec(),
                sequence_features={
                    name: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                    for name in cfg.feature_names
                },
            )
            features, sizes_ok, size_msg = self._frame_features(lists)
            has_frames = features[schema.NUM_FRAMES_KEY] > 0
        else:
            spec = self._context_spec()
            spec.update({name: tf.io.VarLenFeature(tf.float32) for name in cfg.feature_names})
            context = tf.io.parse_single_example(serialized, spec)
            features, sizes_ok, size_msg = self._video_features(context)
            has_frames = tf.constant(True)

        ids = context[cfg.id_key].values
        has_id = tf.equal(tf.size(ids), 1)
        video_id = tf.cond(has_id, lambda: ids[0], lambda: tf.constant(""))
        labels = tf.cast(context[schema.LABELS_KEY].values, tf.int32)
        in_range = (labels >= 0) & (labels < cfg.num_classes)
        title_ok, title_msg = self._title(context, features)
        category_ok, category_msg = self._category(context, features)
        bad = tf.stack([~has_id, ~has_frames, ~sizes_ok, ~tf.reduce_all(in_range), ~title_ok,
                        ~category_ok])

        other_keys = [k for k in self._id_keys if k != cfg.id_key]
        other_found = tf.reduce_any([tf.size(context[k].values) > 0 for k in other_keys])
        messages = tf.stack([
            tf.where(
                other_found,
                f"context key '{cfg.id_key}' is missing (the record has "
                f"'{'/'.join(other_keys)}': set data.id_key)",
                f"context key '{cfg.id_key}' is missing or not a single value",
            ),
            "the video has no frames",
            size_msg,
            tf.strings.format(f"key 'labels' has ids {{}} outside [0, {cfg.num_classes})",
                              (tf.boolean_mask(labels, ~in_range),)),
            title_msg,
            category_msg,
        ])
        detail = tf.strings.reduce_join(tf.boolean_mask(messages, bad), separator="; ")
        error = tf.where(
            tf.reduce_any(bad),
            tf.strings.join([filename, ": record ", tf.strings.as_string(index), " (id '",
                             video_id, "'): ", detail]),
            "",
        )
        features[schema.VIDEO_ID_KEY] = video_id
        # Out-of-range ids make the record bad (reported above); masking them only
        # keeps one_hot, which zeroes them silently, away from them. reduce_sum, not
        # reduce_max (-inf for a video without labels); the minimum folds repeats.
        features[schema.LABELS_KEY] = tf.minimum(tf.reduce_sum(
            tf.one_hot(tf.boolean_mask(labels, in_range), cfg.num_classes), axis=0), 1.0)
        return features, bad, error

    def _title(self, context, features):
        """Puts the title (or "") in `features`; (ok, message): one valid UTF-8 value."""
        if not self.cfg.use_title:
            return tf.constant(True), tf.constant("")
        key = self.cfg.title_key
        values = context[key].values
        title = tf.cond(tf.size(values) > 0, lambda: values[0], lambda: tf.constant(""))
        # unicode_transcode with "strict" would fail the whole pipeline: compare
        # a lossy transcode with the original instead
        valid = tf.equal(tf.strings.unicode_transcode(
            title, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD), title)
        ok = valid & (tf.size(values) <= 1)
        features[schema.TITLE_KEY] = tf.where(ok, title, "")
        message = tf.where(
            tf.size(values) > 1, f"context key '{key}' holds more than one value",
            tf.where(valid, "", f"context key '{key}' is not valid UTF-8 text"))
        return ok, message

    def _category(self, context, features):
        """Puts the category id in `features`; (ok, message): one id in range."""
        n = self.cfg.num_categories
        if not n:
            return tf.constant(True), tf.constant("")
        key = self.cfg.category_key
        values = context[key].values
        one = tf.equal(tf.size(values), 1)
        value = tf.cond(one, lambda: values[0], lambda: tf.constant(-1, tf.int64))
        ok = one & (value >= 0) & (value < n)
        features[schema.CATEGORY_KEY] = tf.cast(tf.where(ok, value, 0), tf.int32)
        message = tf.where(
            one,
            tf.strings.format(f"context key '{key}' is {{}}, outside [0, {n})", (value,)),
            f"context key '{key}' is missing or not a single value (data.num_categories is {n})",
        )
        return ok, tf.where(ok, "", message)

    def _frame_features(self, lists):
        """uint8 frames [T, size] per feature (T = shortest list, at most max_frames)."""
        cfg = self.cfg
        features, oks, messages = {}, [], []
        for name, size in zip(cfg.feature_names, cfg.feature_sizes):
            byte_lengths = tf.strings.length(lists[name])
            ok = tf.reduce_all(tf.equal(byte_lengths, size))
            oks.append(ok)
            messages.append(_message_unless(
                ok, f"feature list '{name}' has frames of {{}} bytes, expected {size}",
                tf.boolean_mask(byte_lengths, byte_lengths != size)[:3]))
            features[name] = tf.cond(
                ok,
                lambda frames=lists[name], size=size: tf.reshape(
                    tf.io.decode_raw(frames, tf.uint8), [-1, size]),
                lambda size=size: tf.zeros([0, size], tf.uint8),
            )
        num_frames = tf.reduce_min([tf.shape(lists[n])[0] for n in cfg.feature_names])
        num_frames = tf.minimum(num_frames, cfg.max_frames)
        features = {n: f[:num_frames] for n, f in features.items()}
        features[schema.NUM_FRAMES_KEY] = tf.cast(num_frames, tf.int32)
        return features, tf.reduce_all(oks), tf.strings.reduce_join(messages)

    def _video_features(self, context):
        """float32 [size] per feature of a video-level record."""
        features, oks, messages = {}, [], []
        for name, size in zip(self.cfg.feature_names, self.cfg.feature_sizes):
            values = context[name].values
            ok = tf.equal(tf.size(values), size)
            oks.append(ok)
            messages.append(_message_unless(
                ok, f"feature '{name}' has {{}} values, expected {size}", tf.size(values)))
            features[name] = tf.cond(
                ok,
                lambda values=values, size=size: tf.reshape(values, [size]),
                lambda size=size: tf.zeros([size], tf.float32),
            )
        return features, tf.reduce_all(oks), tf.strings.reduce_join(messages)


def _message_unless(ok, template, value):
    """"" when `ok`, else `template` formatted with `value` (a scalar string tensor)."""
    return tf.where(ok, "", tf.strings.format(template, (value,)))


def _read_shard(filename, size, skip_corrupt):
    """(record, filename, index) of every record of one shard.

    With `skip_corrupt`, reading stops at a corrupt or truncated record instead of
    failing (nothing after the damage can be read), and a marker follows the last
    record: index -1 when the records read add up to the file's size, or
    -2 - (records read) when the shard was damaged.
    """
    records = tf.data.TFRecordDataset(filename).enumerate()
    records = records.map(lambda i, r: (r, filename, i))
    if not skip_corrupt:
        return records
    marker = tf.data.Dataset.from_tensors((tf.constant(b""), filename, tf.constant(-1, tf.int64)))

    def count(state, element):
        nbytes, n = state
        record, name, index = element
        is_marker = index < 0
        complete = tf.equal(nbytes, size)
        index = tf.where(is_marker, tf.where(complete, tf.constant(-1, tf.int64), -2 - n), index)
        step = tf.cast(tf.strings.length(record), tf.int64) + _RECORD_OVERHEAD
        state = (nbytes + tf.where(is_marker, tf.constant(0, tf.int64), step), n + 1)
        return state, (record, name, index)

    zero = tf.constant(0, tf.int64)
    return records.ignore_errors().concatenate(marker).scan((zero, zero), count)


def _keep_record(record, filename, index, skip_counter):
    """Drops the end-of-shard markers of `_read_shard`, counting damaged shards."""
    damaged = index < -1

    def report():
        tf.print(tf.strings.join(["warning: ", filename, " is corrupt or truncated at record ",
                                  tf.strings.as_string(-2 - index),
                                  "; the rest of this shard is skipped"]),
                 output_stream=sys.stderr)
        skip_counter.add_corrupt_shard()
        return tf.constant(False)

    return tf.cond(damaged, report, lambda: index >= 0)


def _raise_if_bad(features, bad, error):
    # base64 keeps the message intact through the assertion's own quoting
    tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)), [_ERROR_MARK, tf.io.encode_base64(error)], summarize=1
    )
    return features


def make_dataset(
    cfg: DataConfig,
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
    """
    files = list_files(pattern)
    parser = RecordParser(cfg)
    if cfg.on_bad_record == "skip" and skip_counter is None:
        skip_counter = SkipCounter()

    skip = cfg.on_bad_record == "skip"
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
        lambda filename, size: _read_shard(filename, size, skip),
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
        ds = ds.filter(lambda record, filename, index: _keep_record(record, filename, index,
                                                                     skip_counter))
    ds = ds.map(parser.parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if skip:

        def keep(features, bad, error):
            skip_counter.add(bad)
            return tf.logical_not(tf.reduce_any(bad))

        ds = ds.filter(keep).map(lambda f, b, e: f)
    else:
        ds = ds.map(_raise_if_bad)
    if repeat:
        ds = ds.repeat()
    if cfg.record_type == "frame":
        frames = cfg.max_frames if cfg.pad_to_max_frames else None
        padded_shapes = {n: [frames, s] for n, s in zip(cfg.feature_names, cfg.feature_sizes)}
        padded_shapes.update(
            {schema.NUM_FRAMES_KEY: [], schema.VIDEO_ID_KEY: [], schema.LABELS_KEY: [cfg.num_classes]}
        )
        if cfg.use_title:
            padded_shapes[schema.TITLE_KEY] = []
        if cfg.num_categories:
            padded_shapes[schema.CATEGORY_KEY] = []
        if cfg.length_buckets and bucket:
            ds = ds.bucket_by_sequence_length(
                lambda f: f[schema.NUM_FRAMES_KEY],
                bucket_boundaries=[b + 1 for b in cfg.length_buckets],
                bucket_batch_sizes=[batch_size] * (len(cfg.length_buckets) + 1),
                padded_shapes=padded_shapes,
            )
        else:
            ds = ds.padded_batch(batch_size, padded_shapes=padded_shapes)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def model_inputs(cfg: DataConfig, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The subset of a batch that models take as inputs."""
    keys = list(cfg.feature_names)
    if cfg.record_type == "frame":
        keys.append(schema.NUM_FRAMES_KEY)
    if cfg.use_title:
        keys.append(schema.TITLE_KEY)
    return {k: batch[k] for k in keys}


def input_signature(cfg: DataConfig) -> Dict[str, tf.TensorSpec]:
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
    [B, num_classes] and/or `category` int32 [B]."""
    out = {}
    if "tags" in tasks:
        out["tags"] = batch[schema.LABELS_KEY]
    if "category" in tasks:
        out["category"] = batch[schema.CATEGORY_KEY]
    return out


def for_keras(cfg: DataConfig, ds: tf.data.Dataset, tasks=("tags",)) -> tf.data.Dataset:
    """Maps batches to (inputs, targets) pairs for `keras.Model.fit`."""
    return ds.map(
        lambda b: (model_inputs(cfg, b), targets(b, tasks)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def translate_error(exc: BaseException, files: Optional[List[str]] = None) -> Optional[DataError]:
    """Turns a TensorFlow error raised by the pipeline into a `DataError`, if it is one.

    Args:
        exc: the exception raised while iterating a dataset (possibly inside fit).
        files: the shards that were read, to locate a corrupt record.

    Returns:
        A DataError with a message naming the file, record and key, or None when the
        exception did not come from bad input data.
    """
    text = str(exc)
    if _ERROR_MARK in text:
        match = re.search(_ERROR_MARK + r"[^A-Za-z0-9_=-]+([A-Za-z0-9_=-]+)", text)
        detail = base64.urlsafe_b64decode(match.group(1) + "==").decode("utf-8", "replace")
        return DataError(
            f"bad record: {detail.strip()} (set data.on_bad_record=skip to drop and count "
            "such records)"
        )
    if isinstance(exc, tf.errors.DataLossError) or "corrupted record" in text:
        where = find_corrupt_record(files) if files else None
        if where:
            return DataError(
                f"{where}: the shard is corrupt or truncated (CRC check failed); "
                "replace or remove this file"
            )
        return DataError(f"a shard is corrupt or truncated: {text.splitlines()[0]}")
    if isinstance(exc, tf.errors.NotFoundError):
        return DataError(f"data file not found: {text.splitlines()[0]}")
    return None


def find_corrupt_record(files: List[str]) -> Optional[str]:
    """Reads shards one by one and names the first unreadable record, if any."""
    for path in files:
        count = 0
        try:
            for _ in tf.data.TFRecordDataset(path):
                count += 1
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
            return f"{path}: record {count}"
        except tf.errors.OpError as exc:  # truncated header or similar
            return f"{path}: record {count} ({exc.message.splitlines()[0]})"
    return None
