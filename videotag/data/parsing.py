"""The one parser of YT8M records, for the tf.data pipeline and the served model.

`RecordParser.parse` takes a batch of serialized records and returns their
features, one flag per problem and one message per bad record. It is written in
TensorFlow ops only (ParseSequenceExampleV2 / ParseExampleV2, DecodeRaw,
UnicodeTranscode, ragged and segment ops), so once traced into a SavedModel it runs
without videotag. The input pipeline (`videotag.data.pipeline`) and every serving
signature (`videotag.export.serving`) use it: a record is judged and described the
same way in training, evaluation, prediction and serving.

The rules, one reason of `PARSE_REASONS` each:

- `missing_id`: the id key (`data.id_key`) holds exactly one value; when it is
  absent but the record has `id` or `video_id`, the message says to set
  `data.id_key`.
- `no_frames`: every frame feature list has at least one frame (frame-level).
- `bad_frame_bytes`: every frame holds one value of the feature's size in bytes
  (frame-level); a video-level feature holds exactly its size in floats.
- `label_out_of_range`: every label id is in [0, data.num_classes).
- `bad_title`: the title, when read, is at most one value of valid UTF-8 text.
- `bad_category`: the category, when read, is one value in [0, data.num_categories).
- `bad_segments`: the segment ratings, when read (`data.segment_labels`), are
  consistent: the rules and messages are `videotag.data.segments.SegmentRule`'s.
- `wrong_type`: every key read holds values of the type asked (frames bytes, labels
  and category int64, id and title bytes, video-level features float), found from
  the wire format before parsing (`videotag.data.kinds`): such a record is set aside
  and described by this reason alone, instead of failing the parse of its batch.

Frame features stay uint8 codes (`videotag.data.frames` checks, joins and decodes
them): by default a record's frames travel as one string of bytes (one scalar per
record through tf.data) until `decode_frames` turns a batch of them into uint8
[B, T, size]; a parser made with `frames="uint8"` decodes them in the parse (a batch
parsed at once, as the training pipeline does), and with `frames="none"` checks them
and counts them only. rgb and audio may differ in length:
the shorter counts, and at most `data.max_frames` frames are kept.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

from videotag.data import schema
from videotag.data.frames import (check_dense_frames, check_frames, decode_dense, decode_ragged,
                                   join_frames)
from videotag.data.kinds import check_kinds

if TYPE_CHECKING:
    from videotag.config import DataConfig

PARSE_REASONS = ("missing_id", "no_frames", "bad_frame_bytes", "label_out_of_range",
                 "bad_title", "bad_category", "bad_segments", "wrong_type")
# Context keys that hold the video id in the YT8M releases (2017: video_id).
ID_KEYS = ("id", "video_id")
# How RecordParser returns frame features (see RecordParser's `frames`).
FRAME_OUTPUTS = ("bytes", "uint8", "none")
# At most this many bad values (label ids, segment start times, ...) are quoted per record.
_SHOWN_LABELS = 5


class ParsedRecords(NamedTuple):
    """What `RecordParser.parse` returns for a batch of B records.

    Attributes:
        features: by name. Frame-level: each frame feature string [B], the bytes
            of the record's first `num_frames` frames concatenated (uint8 codes;
            `decode_frames` turns a batch of them into uint8 [B, T, size]), or with
            `frames="uint8"` those frames as uint8 [B, T, size] (T = the longest
            `num_frames` of the batch, or `data.max_frames` with
            `data.pad_to_max_frames`; zeros after each record's `num_frames`), or
            with `frames="none"` no frame feature; and `num_frames` int32 [B].
            Frames are exact for good records only. Video-level: each feature
            float32 [B, size].
            Always `video_id` string [B] (the first value of the id key, "" when
            absent); with targets `labels` float32 multi-hot [B, num_classes]
            (out-of-range ids left out) and, when categories are read, `category`
            int32 [B] (0 when bad); when titles are read `title` string [B] (""
            when absent or bad).
        bad: bool [B, len(PARSE_REASONS)], the problems of each record.
        errors: string [B]: "" for a good record, else "<name> (id <id>): " (or
            "<name> (no id): ") followed by its problems joined by "; ". Names are
            not quoted: a served request's error (an Assert) would escape quotes.
        context_keys: with the types checked, string [B, (keys)]: the context
            keys (an Example's feature keys) of each record that hold a value of any
            type, as the type check read them (`videotag.data.kinds.Kinds`); None
            otherwise.
    """

    features: Dict[str, object]
    bad: tf.Tensor
    errors: tf.Tensor
    context_keys: Optional[tf.RaggedTensor] = None


class RecordParser:
    """Parses and checks batches of serialized YT8M records.

    Args:
        cfg: the data config (record type, keys, features, classes, max frames).
        features: the features to read; default all of `cfg.feature_names` (none:
            the frames are neither read nor checked).
        title: read the title; default `cfg.use_title`.
        targets: read `labels` and, with `cfg.num_categories`, `category` (served
            models read neither).
        segments: read and check the segment ratings (`SegmentRule`); default
            `targets and cfg.segment_labels`. Needs the frame features.
        check_types: find the records whose keys hold values of another type first
            (`wrong_type`); without it such a record fails the parse op of its whole
            batch, with TensorFlow's "Data types don't match" naming it (the tf.data
            pipeline then describes it with a parser that checks: see
            `videotag.data.tf_errors`), and the other records pay nothing for it.
            With `frames="uint8"` (and no segments) a frame holding other than one
            value does the same ("Number of values != expected", the record and key
            named, described by `videotag.data.tf_errors`): the frames are then parsed
            dense, as TensorFlow's parse pads them, and decoded in one op.
        frames: how frame-level features are returned (`ParsedRecords.features`):
            "bytes" (one string per record), "uint8" (decoded, [B, T, size]) or
            "none" (checked and counted, not returned).
    """

    def __init__(self, cfg: "DataConfig", features: Optional[Sequence[str]] = None,
                 title: Optional[bool] = None, targets: bool = True,
                 segments: Optional[bool] = None, check_types: bool = True,
                 frames: str = "bytes"):
        if frames not in FRAME_OUTPUTS:
            raise ValueError(f"frames must be one of {FRAME_OUTPUTS}, not '{frames}'")
        sizes = dict(zip(cfg.feature_names, cfg.feature_sizes))
        names = list(cfg.feature_names) if features is None else list(features)
        unknown = [n for n in names if n not in sizes]
        if unknown:
            raise ValueError(f"feature '{unknown[0]}' is not in data.feature_names")
        self.features: List[Tuple[str, int]] = [(n, sizes[n]) for n in names]
        self.frame_level = cfg.record_type == "frame"
        self.max_frames = cfg.max_frames
        self.id_key = cfg.id_key
        self.other_id_keys = [k for k in ID_KEYS if k != cfg.id_key]
        read_title = cfg.use_title if title is None else title
        self.title_key = cfg.title_key if read_title else None
        self.num_classes = cfg.num_classes if targets else 0
        self.num_categories = (cfg.num_categories or 0) if targets else 0
        self.category_key = cfg.category_key
        self.segments = None
        if (targets and cfg.segment_labels) if segments is None else segments:
            from videotag.data.segments import SegmentRule  # it builds on this module

            self.segments = SegmentRule(cfg)
        self.check_types = check_types
        self.frames = frames
        self.padded = cfg.max_frames if cfg.pad_to_max_frames else None
        # decoded frames without the type check: the frames parsed as TensorFlow's own
        # dense [B, T] strings and decoded padded in one op (a frame holding other than
        # one value then fails the parse op, as a value of another type does)
        self.dense = (self.frame_level and frames == "uint8" and not check_types
                      and self.segments is None)

    def parse(self, serialized: tf.Tensor, names: tf.Tensor) -> ParsedRecords:
        """Parses serialized records string [B], named by `names` string [B].

        The names start each record's error message and name it in TensorFlow's own
        error when a record is not a protocol message at all (which fails the op).
        """
        count = tf.shape(serialized, out_type=tf.int64)[0]
        features, checks, kinds = self._check(serialized, names, count)
        bad = _flags(checks, count)
        # messages are written only for a batch that has a bad record
        errors = tf.cond(tf.reduce_any(bad),
                         lambda: _describe(checks, features[schema.VIDEO_ID_KEY], names, bad),
                         lambda: tf.fill([count], ""))
        return ParsedRecords(features, bad, errors, None if kinds is None
                             else tf.ragged.boolean_mask(kinds.keys, kinds.held))

    def _check(self, serialized, names, count):
        """(features, {reason: (bad [B], a function writing the messages [B])}, the
        `Kinds` of the type check or None)."""
        spec = {k: _ragged(tf.string) for k in [self.id_key, *self.other_id_keys]}
        if self.num_classes:
            spec[schema.LABELS_KEY] = _ragged(tf.int64)
        if self.title_key:
            spec[self.title_key] = _ragged(tf.string)
        if self.num_categories:
            spec[self.category_key] = _ragged(tf.int64)
        if self.segments:
            spec.update({key: _ragged(dtype) for key, dtype in self.segments.keys.items()})
        # one dense [B, T] string per frame feature where that is enough (see `dense`)
        frame_spec = (tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                      if self.dense else _ragged(tf.string))
        sequence = {n: frame_spec for n, _ in self.features} if self.frame_level else {}
        if not self.frame_level:
            spec.update({n: _ragged(tf.float32) for n, _ in self.features})
        kinds = None
        if self.check_types:
            hints = {n: (f"one value of {size} bytes per frame" if self.frame_level
                         else f"{size} values") for n, size in self.features}
            kinds = check_kinds(serialized, names, self.frame_level,
                                {k: f.dtype for k, f in spec.items()},
                                {k: f.dtype for k, f in sequence.items()}, self.id_key, hints)
            serialized = tf.where(kinds.wrong, "", serialized)  # parsed as an empty record
        if self.frame_level:
            context, lists, lengths = tf.io.parse_sequence_example(
                serialized, context_features=spec, sequence_features=sequence,
                example_names=names)
            features, checks = self._frames(lists, lengths, count)
        else:
            context = tf.io.parse_example(serialized, spec, example_names=names)
            features, checks = self._means(context)
        ids = context[self.id_key]
        features[schema.VIDEO_ID_KEY] = _first(ids, "")
        checks["missing_id"] = self._id(context, ids.row_lengths())
        if self.num_classes:
            checks["label_out_of_range"] = self._labels(context, features, count)
        if self.title_key:
            checks["bad_title"] = self._title(context, features)
        if self.num_categories:
            checks["bad_category"] = self._category(context, features)
        if self.segments and self.frame_level and self.features:
            # the video's own length, before max_frames cuts it
            length = tf.reduce_min(tf.stack(
                [lists[n].row_lengths() for n, _ in self.features], axis=1), axis=1)
            checks["bad_segments"] = self.segments.check(context, features, length, count)
        if kinds is not None:  # a record of the wrong types is described by that alone
            checks = {r: (bad & ~kinds.wrong, m) for r, (bad, m) in checks.items()}
            checks["wrong_type"] = (kinds.wrong, kinds.message)
            features[schema.VIDEO_ID_KEY] = tf.where(kinds.wrong, kinds.video_id,
                                                     features[schema.VIDEO_ID_KEY])
        return features, checks, kinds

    # --- one rule each: (bad [B], a function writing the messages [B]) ----------------

    def _id(self, context, count):
        key = self.id_key

        def message():
            present = [context[k].row_lengths() > 0 for k in self.other_id_keys]
            found = _join_where(list(self.other_id_keys), present, " and ")
            missing = tf.where(
                found != "",
                tf.strings.join([f"context key {key} is missing (the record has ", found,
                                 ": set data.id_key)"]),
                f"context key {key} is missing")
            return tf.where(count == 0, missing, f"context key {key} holds more than one value")

        return count != 1, message

    def _frames(self, lists, list_lengths, count):
        """Frame bytes per feature, num_frames, and the no_frames/bad_frame_bytes checks."""
        if not self.features:  # a pass over titles alone
            return {}, {}
        lengths, wrong, wrong_messages, exact = {}, [], [], {}
        for name, size in self.features:
            if self.dense:  # [B, T] and the frames of each record
                lengths[name] = list_lengths[name]
                frame_bad, message = check_dense_frames(lists[name], lengths[name], name, size)
            else:  # [B, (frames), (values)]
                frame_bad, message, exact[name] = check_frames(lists[name], name, size, count)
                lengths[name] = lists[name].row_lengths()
            wrong.append(frame_bad)
            wrong_messages.append(message)
        num_frames = tf.reduce_min(tf.stack(list(lengths.values()), axis=1), axis=1)
        num_frames = tf.minimum(num_frames, self.max_frames)
        features = {}
        if self.frames == "uint8":  # the batch's longest video (never below 0 frames)
            steps = (tf.constant(self.padded, tf.int64) if self.padded
                     else tf.maximum(tf.reduce_max(num_frames), 0))
        for name, size in self.features:
            if self.frames == "bytes":
                features[name] = join_frames(lists[name], num_frames, size)
            elif self.dense:
                features[name] = decode_dense(lists[name], lengths[name], num_frames, steps,
                                              size)
            elif self.frames == "uint8":
                features[name] = decode_ragged(lists[name], num_frames, steps, size,
                                               exact[name])
        features[schema.NUM_FRAMES_KEY] = tf.cast(num_frames, tf.int32)

        def no_frames():
            empty = [lengths[n] == 0 for n, _ in self.features]
            return tf.where(
                tf.reduce_all(tf.stack(empty, axis=1), axis=1), "the video has no frames",
                _join_where([f"feature list {n} has no frames" for n, _ in self.features],
                            empty, "; "))

        checks = {
            "no_frames": (num_frames == 0, no_frames),
            "bad_frame_bytes": (
                tf.reduce_any(tf.stack(wrong, axis=1), axis=1),
                lambda: _join_where([m() for m in wrong_messages], wrong, "; ")),
        }
        return features, checks

    def _means(self, context):
        """float32 features of video-level records and their bad_frame_bytes check."""
        if not self.features:
            return {}, {}
        features, counts, wrong = {}, [], []
        for name, size in self.features:
            values = context[name]
            counts.append(values.row_lengths())
            wrong.append(counts[-1] != size)
            features[name] = values.to_tensor(shape=[None, size])

        def message():
            return _join_where([
                tf.strings.join([f"feature {name} has ", tf.strings.as_string(n),
                                 f" values, expected {size}"])
                for (name, size), n in zip(self.features, counts)], wrong, "; ")

        return features, {"bad_frame_bytes": (tf.reduce_any(tf.stack(wrong, axis=1), axis=1),
                                              message)}

    def _labels(self, context, features, count):
        """Multi-hot labels (ids in range only) and the label_out_of_range check."""
        labels = context[schema.LABELS_KEY]
        ids, rows = labels.flat_values, labels.value_rowids()
        ok = (ids >= 0) & (ids < self.num_classes)
        valid = tf.stack([tf.boolean_mask(rows, ok), tf.boolean_mask(ids, ok)], axis=1)
        # scatter_nd adds repeats up: the minimum folds them
        features[schema.LABELS_KEY] = tf.minimum(tf.scatter_nd(
            valid, tf.ones([tf.shape(valid)[0]], tf.float32),
            tf.stack([count, tf.constant(self.num_classes, tf.int64)])), 1.0)
        outside_count = tf.math.unsorted_segment_sum(tf.cast(~ok, tf.int32), rows, count)

        def message():
            return tf.strings.join([f"context key {schema.LABELS_KEY} has ids [",
                                    listed(ids, rows, ~ok, count),
                                    f"] outside [0, {self.num_classes})"])

        return outside_count > 0, message

    def _title(self, context, features):
        """The title ("" when bad) and the bad_title check: one valid UTF-8 value."""
        key = self.title_key
        values = context[key]
        title = _first(values, "")
        several, invalid = values.row_lengths() > 1, ~valid_utf8(title)
        features[schema.TITLE_KEY] = tf.where(several | invalid, "", title)

        def message():
            return _join_where([f"context key {key} holds more than one value",
                                f"context key {key} is not valid UTF-8 text"],
                               [several, invalid], "; ")

        return several | invalid, message

    def _category(self, context, features):
        """The category id (0 when bad) and the bad_category check: one id in range."""
        key, n = self.category_key, self.num_categories
        values = context[key]
        count = values.row_lengths()
        value = _first(values, -1)
        ok = (count == 1) & (value >= 0) & (value < n)
        features[schema.CATEGORY_KEY] = tf.cast(tf.where(ok, value, 0), tf.int32)

        def message():
            return tf.where(
                count == 0, f"context key {key} is missing (data.num_categories is {n})",
                tf.where(count > 1, f"context key {key} holds more than one value",
                         tf.strings.join([f"context key {key} is ", tf.strings.as_string(value),
                                          f", outside [0, {n})"])))

        return ~ok, message


def _describe(checks, video_id, names, bad) -> tf.Tensor:
    """The message of each record, "" for a good one (`ParsedRecords.errors`)."""
    fine = tf.fill(tf.shape(names), "")
    messages = tf.stack([checks[r][1]() if r in checks else fine for r in PARSE_REASONS],
                        axis=1)
    header = tf.where(video_id == "", " (no id): ", tf.strings.join([" (id ", video_id, "): "]))
    return tf.where(tf.reduce_any(bad, axis=1),
                    tf.strings.join([names, header, _join_masked(messages, bad, "; ")]), "")


def listed(values: tf.Tensor, rows: tf.Tensor, picked: tf.Tensor, count) -> tf.Tensor:
    """Per row, its first `_SHOWN_LABELS` picked values as text ("4 17 ..." when more).

    Args:
        values: the flat values of a [B, (n)] ragged tensor (numbers).
        rows: int64 [n], the row of each value (`value_rowids()`).
        picked: bool [n], the values to show.
        count: B, the number of rows.

    Returns:
        string [B], "" for a row without picked values.
    """
    shown, shown_rows = tf.boolean_mask(values, picked), tf.boolean_mask(rows, picked)
    # values come row by row: the place of a value in its row is its index less the
    # index of its row's first value
    index = tf.range(tf.size(shown_rows, out_type=tf.int64))
    place = index - tf.gather(tf.math.unsorted_segment_min(index, shown_rows, count), shown_rows)
    strings = (tf.strings.as_string(shown, shortest=True) if shown.dtype.is_floating
               else tf.strings.as_string(shown))
    text = tf.strings.unsorted_segment_join(
        strings, tf.where(place < _SHOWN_LABELS, shown_rows, count),
        count + 1, separator=" ")[:-1]
    more = tf.math.unsorted_segment_sum(tf.cast(picked, tf.int32), rows, count) > _SHOWN_LABELS
    return tf.strings.join([text, tf.where(more, " ...", "")])


def _flags(checks, count) -> tf.Tensor:
    """bool [B, len(PARSE_REASONS)]: the problems of each record."""
    fine = tf.zeros([count], tf.bool)
    return tf.stack([checks[r][0] if r in checks else fine for r in PARSE_REASONS], axis=1)


def valid_utf8(text: tf.Tensor) -> tf.Tensor:
    """True where `text` is valid UTF-8: a lossy transcode leaves valid text unchanged
    (a strict transcode would fail the whole op instead of flagging the value)."""
    return tf.equal(tf.strings.unicode_transcode(
        text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD), text)


def _ragged(dtype) -> tf.io.RaggedFeature:
    return tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)


def _first(values: tf.RaggedTensor, default) -> tf.Tensor:
    """The first value of each row of a [B, (n)] ragged tensor, `default` when empty."""
    flat = tf.concat([values.flat_values, tf.fill([1], tf.constant(default, values.dtype))], 0)
    none = tf.size(values.flat_values, out_type=values.row_splits.dtype)
    return tf.gather(flat, tf.where(values.row_lengths() > 0, values.row_starts(), none))


def _join_where(messages: Sequence, masks: Sequence[tf.Tensor], separator: str) -> tf.Tensor:
    """Per row, the messages whose mask is true joined by `separator` ("" when none).

    Args:
        messages: scalars (Python strings) or string [B] tensors, one per mask.
        masks: bool [B] each.
    """
    masks = tf.stack(masks, axis=1)
    messages = tf.stack([tf.broadcast_to(m, tf.shape(masks)[:1]) for m in messages], axis=1)
    return _join_masked(messages, masks, separator)


def _join_masked(messages: tf.Tensor, masks: tf.Tensor, separator: str) -> tf.Tensor:
    """Per row of messages [B, K], those whose mask [B, K] is true joined by `separator`."""
    joined = tf.strings.reduce_join(tf.where(masks, messages + separator, ""), axis=1)
    return tf.strings.regex_replace(joined, re.escape(separator) + "$", "")
