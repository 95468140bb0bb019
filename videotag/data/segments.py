"""The YT8M 2019 segment layout: segment classes, the rule of segment ratings, rated
segments as training examples, and the windows that score every segment.

A segment-rated record is a frame-level record with three more context lists of
equal length, one entry per rated (segment, class) pair: `segment_labels` (int64
class ids), `segment_start_times` (int64, seconds = frame index of the segment's
first frame) and `segment_scores` (float: 1 the class is in the segment, 0 it is
not). A segment is `data.segment_size` frames (5) from its start time; a pair that
is not rated is neither positive nor negative. The segment classes are a subset of
the video classes (`data.segment_label_file`, the 2019 release's
`segment_label_ids.csv`: 1,000 of 3,862).

Everything here but `load_segment_classes` is TensorFlow ops: the record parser
(`videotag.data.parsing`) checks the ratings with `SegmentRule`, the input pipeline
turns parsed chunks into rated segments (`rated_segments`), and evaluation,
prediction and the served model score each segment on its window
(`segment_windows`).
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Dict, Tuple

import numpy as np
import tensorflow as tf

from videotag.data import schema
from videotag.data.parsing import _join_where, listed
from videotag.errors import DataError

if TYPE_CHECKING:
    from videotag.config import DataConfig

LABELS_KEY = "segment_labels"
START_TIMES_KEY = "segment_start_times"
SCORES_KEY = "segment_scores"
# batch keys of rated segments (training): the scores of the rated classes (0
# elsewhere) and 1 where a class is rated (the reference reader's names)
LABEL_WEIGHTS_KEY = "label_weights"
START_KEY = "segment_start_time"


def load_segment_classes(path: str, num_classes: int) -> np.ndarray:
    """The segment classes of a label map file, int64 [n] sorted.

    The 2019 release's `segment_label_ids.csv` holds a header `Index` and one class
    id per line; a header with several columns (`Index,Name,...`) is read by its
    `Index` column.

    Raises:
        DataError: the file is missing or empty, a line is not a class id in
            [0, num_classes), or an id repeats.
    """
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            lines = f.read().splitlines()
    except tf.errors.OpError:
        raise DataError(f"segment label file not found: {path}") from None
    rows = list(csv.reader(lines))
    column, first = 0, 0
    if rows and rows[0] and not rows[0][0].strip().lstrip("-").isdigit():
        header = [h.strip().lower() for h in rows[0]]
        if "index" not in header:
            raise DataError(f"{path}: line 1: expected a class id or an 'Index' header, got "
                            f"{lines[0]!r}")
        column, first = header.index("index"), 1
    ids = []
    for lineno, row in enumerate(rows[first:], start=first + 1):
        if not row or not "".join(row).strip():
            continue
        value = row[column].strip() if len(row) > column else ""
        try:
            ids.append(int(value))
        except ValueError:
            raise DataError(f"{path}: line {lineno}: {value!r} is not a class id") from None
        if not 0 <= ids[-1] < num_classes:
            raise DataError(f"{path}: line {lineno}: class id {ids[-1]} is outside "
                            f"[0, {num_classes}) (check data.num_classes)")
    if not ids:
        raise DataError(f"{path}: no segment class ids")
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"{path}: class ids listed twice: {twice[:5]}")
    return np.array(sorted(ids), np.int64)


def segment_classes(cfg: "DataConfig") -> np.ndarray:
    """The segment classes of a data config, int64 [n] sorted: those of
    `segment_label_file`, or every class."""
    if cfg.segment_label_file:
        return load_segment_classes(cfg.segment_label_file, cfg.num_classes)
    return np.arange(cfg.num_classes, dtype=np.int64)


class SegmentRule:
    """The `bad_segments` rule of the record parser, and the ratings it reads.

    A record's ratings are consistent when the three lists hold as many values;
    every start time is a multiple of `data.segment_size`, inside the video (below
    its number of frames) and below `data.max_frames` (the frames read); every
    label is a segment class; every score is 0 or 1; and no (start, label) pair is
    rated twice. A record without ratings is good.

    Args:
        cfg: the data config (classes, segment size and classes, max frames).
    """

    keys = {LABELS_KEY: tf.int64, START_TIMES_KEY: tf.int64, SCORES_KEY: tf.float32}

    def __init__(self, cfg: "DataConfig"):
        self.size = cfg.segment_size
        self.max_frames = cfg.max_frames
        self.num_classes = cfg.num_classes
        classes = segment_classes(cfg)
        self.all_classes = len(classes) == cfg.num_classes
        mask = np.zeros(cfg.num_classes, bool)
        mask[classes] = True
        self.class_mask = mask

    def check(self, context, features, length, count):
        """Adds the ratings to `features` (ragged [B, (pairs)] each, under their
        context keys) and returns (bad [B], a function writing the messages [B]).

        Args:
            context: the parsed context lists, ragged [B, (values)].
            features: the record features being built.
            length: int64 [B], each video's number of frames (before max_frames).
            count: B.
        """
        labels, starts, scores = (context[k] for k in (LABELS_KEY, START_TIMES_KEY, SCORES_KEY))
        for key, values in ((LABELS_KEY, labels), (START_TIMES_KEY, starts), (SCORES_KEY, scores)):
            features[key] = values
        sizes = [v.row_lengths() for v in (labels, starts, scores)]
        uneven = (sizes[0] != sizes[1]) | (sizes[1] != sizes[2])

        label_ids, label_rows = labels.flat_values, labels.value_rowids()
        in_range = (label_ids >= 0) & (label_ids < self.num_classes)
        outside = ~in_range
        not_segment = in_range & ~tf.gather(tf.constant(self.class_mask),
                                            tf.where(in_range, label_ids, 0))
        t, t_rows = starts.flat_values, starts.value_rowids()
        unaligned = (t < 0) | (t % self.size != 0)
        past_end = ~unaligned & (t >= tf.gather(length, t_rows))
        past_max = ~unaligned & ~past_end & (t >= self.max_frames)
        v, v_rows = scores.flat_values, scores.value_rowids()
        not_binary = (v != 0.0) & (v != 1.0)
        twice = self._twice(labels, starts, uneven, count)

        def by_row(flags, rows):
            return tf.math.unsorted_segment_max(tf.cast(flags, tf.int32), rows, count) > 0

        problems = [uneven, by_row(outside, label_rows), by_row(not_segment, label_rows),
                    by_row(unaligned, t_rows), by_row(past_end, t_rows),
                    by_row(past_max, t_rows), by_row(not_binary, v_rows), twice]

        def message():
            def has(key, values, rows, picked, why):
                return tf.strings.join([f"context key {key} has [",
                                        listed(values, rows, picked, count), "] ", why])

            texts = [
                tf.strings.join([f"context keys {LABELS_KEY}, {START_TIMES_KEY} and "
                                 f"{SCORES_KEY} hold "] + _and(sizes) +
                                [" values (one per rated segment and class: they must be "
                                 "equal)"]),
                has(LABELS_KEY, label_ids, label_rows, outside,
                    f"outside [0, {self.num_classes})"),
                has(LABELS_KEY, label_ids, label_rows, not_segment,
                    "that are not segment classes (data.segment_label_file)"),
                has(START_TIMES_KEY, t, t_rows, unaligned,
                    f"that are not multiples of data.segment_size ({self.size})"),
                has(START_TIMES_KEY, t, t_rows, past_end,
                    tf.strings.join(["past the video's end (", tf.strings.as_string(length),
                                     " frames)"])),
                has(START_TIMES_KEY, t, t_rows, past_max,
                    f"at or past data.max_frames ({self.max_frames}): raise it to read them"),
                has(SCORES_KEY, v, v_rows, not_binary, "other than 0 and 1"),
                f"context keys {START_TIMES_KEY} and {LABELS_KEY} rate a (start time, class) pair twice",
            ]
            return _join_where(texts, problems, "; ")

        return tf.reduce_any(tf.stack(problems, axis=1), axis=1), message

    def _twice(self, labels, starts, uneven, count):
        """bool [B]: a record of even lists rates a (start, label) pair twice."""
        def even(values):  # the values of records whose lists are even
            return tf.boolean_mask(values.flat_values, tf.gather(~uneven, values.value_rowids()))

        rows = even(tf.RaggedTensor.from_row_splits(labels.value_rowids(), labels.row_splits))
        # start and label clipped into a key space; out-of-range values are flagged anyway
        start = tf.clip_by_value(even(starts), 0, 2**20)
        label = tf.clip_by_value(even(labels), 0, 2**20)
        key = (rows * (2**21) + start) * (2**21) + label
        unique, _ = tf.unique(key)
        first_rows = unique // (2**42)
        per_row = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, count)
        unique_per_row = tf.math.unsorted_segment_sum(tf.ones_like(first_rows), first_rows, count)
        return per_row != unique_per_row


def _and(sizes):
    """[a, ", ", b, " and ", c] for three int tensors [B] (as strings)."""
    a, b, c = (tf.strings.as_string(s) for s in sizes)
    return [a, ", ", b, " and ", c]


def rated_segments(features: Dict[str, tf.Tensor], cfg: "DataConfig") -> Dict[str, tf.Tensor]:
    """The rated segments of a parsed chunk of good records, as training examples.

    Each distinct start time of a record is one example: its frames (the bytes of
    up to `segment_size` frames from the start, one string per feature, as the
    pipeline carries frames), `num_frames` (fewer at a video's end), `video_id`,
    `segment_start_time`, `labels` float32 [C] (the rated scores, 0 elsewhere) and
    `label_weights` float32 [C] (1 where a class is rated). Records without ratings
    give none.

    Args:
        features: `ParsedRecords.features` of a chunk [B] read with segments.
        cfg: the data config.

    Returns:
        The examples, each tensor [S, ...], in record order then first rating order.
    """
    starts = features[START_TIMES_KEY]
    rows = starts.value_rowids()
    span = tf.constant(cfg.max_frames, tf.int64)  # start times are below max_frames
    keys, segment_of = tf.unique(rows * span + starts.flat_values)
    row, start = keys // span, keys % span
    num_frames = tf.cast(features[schema.NUM_FRAMES_KEY], tf.int64)
    length = tf.minimum(tf.gather(num_frames, row) - start, cfg.segment_size)
    out = {schema.VIDEO_ID_KEY: tf.gather(features[schema.VIDEO_ID_KEY], row),
           schema.NUM_FRAMES_KEY: tf.cast(length, tf.int32),
           START_KEY: tf.cast(start, tf.int32)}
    for name, size in zip(cfg.feature_names, cfg.feature_sizes):
        if name in features:
            out[name] = tf.strings.substr(tf.gather(features[name], row),
                                          tf.cast(start * size, tf.int32),
                                          tf.cast(length * size, tf.int32))
    pairs = tf.stack([tf.cast(segment_of, tf.int64), features[LABELS_KEY].flat_values], axis=1)
    shape = tf.stack([tf.size(keys, out_type=tf.int64), tf.constant(cfg.num_classes, tf.int64)])
    out[schema.LABELS_KEY] = tf.scatter_nd(pairs, features[SCORES_KEY].flat_values, shape)
    out[LABEL_WEIGHTS_KEY] = tf.scatter_nd(pairs, tf.ones_like(features[SCORES_KEY].flat_values),
                                           shape)
    return out


def segment_windows(frames: Dict[str, tf.Tensor], num_frames: tf.Tensor, segment_size: int,
                    context: int = 0) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor,
                                               tf.Tensor]:
    """The window of every segment of a batch of videos, to score each segment.

    A video of n frames has ceil(n / segment_size) segments, starting at 0,
    segment_size, ...; the last may be shorter. A segment's window is its frames
    plus up to `context` frames on each side, inside the video; its frames come
    first, then zero padding.

    Args:
        frames: each feature's frames [B, T, size] (any dtype).
        num_frames: int32 [B], each video's valid frames (at most T).
        segment_size: frames per segment.
        context: frames added on each side.

    Returns:
        (windows, window_frames, video, start): each feature's windows [N, W, size]
        with W = segment_size + 2 * context, int32 [N] valid frames of each window,
        int32 [N] the video (row of the batch) and int32 [N] the start time of each
        segment; N segments in video order, then start order.
    """
    num_frames = tf.cast(num_frames, tf.int32)
    steps = tf.shape(next(iter(frames.values())))[1]
    per_video = (num_frames + segment_size - 1) // segment_size
    most = (steps + segment_size - 1) // segment_size
    where = tf.cast(tf.where(tf.range(most)[tf.newaxis, :] < per_video[:, tf.newaxis]), tf.int32)
    video, start = where[:, 0], where[:, 1] * segment_size
    n = tf.gather(num_frames, video)
    first = tf.maximum(start - context, 0)
    window_frames = tf.minimum(n, start + segment_size + context) - first
    width = segment_size + 2 * context
    offsets = tf.range(width)[tf.newaxis, :]
    valid = offsets < window_frames[:, tf.newaxis]
    position = tf.minimum(first[:, tf.newaxis] + offsets, tf.maximum(steps - 1, 0))
    index = tf.stack([tf.broadcast_to(video[:, tf.newaxis], tf.shape(position)), position], -1)
    windows = {}
    for name, values in frames.items():
        gathered = tf.gather_nd(values, index)
        windows[name] = tf.where(valid[:, :, tf.newaxis], gathered, tf.zeros_like(gathered))
    return windows, window_frames, video, start


def segment_probabilities(model, inputs: Dict[str, tf.Tensor], cfg: "DataConfig",
                          classes) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """The model's tag probabilities for every segment of a batch of videos.

    Each segment is scored on its window (`segment_windows`: its frames, plus
    `data.segment_context` frames on each side): a model trained on rated segments
    and a model trained on whole videos are applied alike. A model that reads
    titles gets each window's video title.

    Args:
        model: a callable on model inputs (`training=False`) returning a dict with
            `tags` [N, num_classes].
        inputs: the batch's model inputs (uint8 frames [B, T, size], `num_frames`,
            and `title` when the model reads it).
        cfg: the data config (features, segment size and context).
        classes: int [C'] the classes to return (the segment classes).

    Returns:
        (probabilities float32 [N, C'], video int32 [N], start int32 [N], end int32
        [N]): per segment, in video then start order; `end` is the segment's end time
        (start + segment_size, or the video's end).
    """
    frames = {n: inputs[n] for n in cfg.feature_names if n in inputs}
    windows, window_frames, video, start = segment_windows(
        frames, inputs[schema.NUM_FRAMES_KEY], cfg.segment_size, cfg.segment_context)
    windows[schema.NUM_FRAMES_KEY] = window_frames
    if schema.TITLE_KEY in inputs:
        windows[schema.TITLE_KEY] = tf.gather(inputs[schema.TITLE_KEY], video)
    tags = tf.cast(model(windows, training=False)["tags"], tf.float32)
    end = tf.minimum(start + cfg.segment_size,
                     tf.gather(tf.cast(inputs[schema.NUM_FRAMES_KEY], tf.int32), video))
    return tf.gather(tags, tf.constant(classes, tf.int32), axis=1), video, start, end
