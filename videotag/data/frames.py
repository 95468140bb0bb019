"""Frame-level features as the records hold them: one value of `size` bytes (uint8
codes) per frame. Checked, decoded and joined here for `videotag.data.parsing`'s
`RecordParser`; `decode_frames` turns a batch of joined frames into uint8
[B, T, size] (the tf.data pipeline and the serving signatures use it).

TensorFlow ops only: once traced into a SavedModel they run without videotag.
"""

from __future__ import annotations

import tensorflow as tf


def check_frames(frames: tf.RaggedTensor, name: str, size: int, count: tf.Tensor):
    """(bad [B], a function writing the messages [B], exact) of one frame feature list.

    A frame is good when it holds exactly one value of `size` bytes; the message
    names the first bad frame of the record and how many are bad. `exact` (a bool
    scalar) is true when every frame of the batch is good: checked over the whole
    batch at once, and only when it is false are the frames counted per record.
    """
    values = frames.values  # [frames, (values)]
    value_bytes = tf.strings.length(frames.flat_values, unit="BYTE")
    one_each = tf.equal(values.row_splits,
                        tf.range(tf.size(values.row_splits, out_type=tf.int64)))
    exact = tf.reduce_all(one_each) & tf.reduce_all(tf.equal(value_bytes, size))
    rows = frames.value_rowids

    def frame_lengths():
        """(bytes of each frame's one value, -1 when it holds not exactly one;
        values per frame)."""
        per_frame = values.row_lengths()
        frame_bytes = tf.math.unsorted_segment_sum(value_bytes, values.value_rowids(),
                                                   tf.size(per_frame, out_type=tf.int64))
        return tf.where(per_frame == 1, tf.cast(frame_bytes, tf.int64), -1), per_frame

    def count_wrong():
        lengths, _ = frame_lengths()
        return tf.math.unsorted_segment_sum(tf.cast(lengths != size, tf.int64), rows(), count)

    num_wrong = tf.cond(exact, lambda: tf.zeros([count], tf.int64), count_wrong)

    def message():
        lengths, per_frame = frame_lengths()
        wrong = lengths != size
        starts = frames.row_starts()
        position = tf.range(tf.size(rows(), out_type=tf.int64)) - tf.gather(starts, rows())
        first = tf.math.unsorted_segment_min(tf.where(wrong, position, tf.int64.max), rows(),
                                             count)
        # rows without a bad frame point anywhere valid (their message is not used)
        at = tf.minimum(starts + tf.minimum(first, frames.row_lengths()),
                        tf.size(lengths, tf.int64))
        length = tf.gather(tf.concat([lengths, [0]], 0), at)
        values_held = tf.gather(tf.concat([per_frame, [0]], 0), at)
        return tf.where(
            length >= 0,
            _wrong_bytes(name, first, length, size, num_wrong, frames.row_lengths()),
            tf.strings.join([f"feature list {name}: frame ", tf.strings.as_string(first),
                             " holds ", tf.strings.as_string(values_held),
                             " values, expected one"]))

    return num_wrong > 0, message, exact


def decode_ragged(frames: tf.RaggedTensor, num_frames: tf.Tensor, steps: tf.Tensor,
                  size: int, exact: tf.Tensor) -> tf.Tensor:
    """uint8 [B, steps, size]: per record its first `num_frames` frames, zeros after.

    `frames` is [B, (frames), (values)]; `exact` says every frame holds one value of
    `size` bytes (`check_frames`): the values are then decoded as one block. Else
    each value is decoded to `size` bytes (cut or padded with zeros) and a record's
    values stand for its frames: exact for a good record; a bad one is not used.
    """
    flat = frames.flat_values
    decoded = tf.cond(exact, lambda: tf.reshape(tf.io.decode_raw(flat, tf.uint8), [-1, size]),
                      lambda: tf.io.decode_raw(flat, tf.uint8, fixed_length=size))
    by_record = tf.RaggedTensor.from_row_splits(
        decoded, tf.gather(frames.values.row_splits, frames.row_splits), validate=False)
    dense = by_record.to_tensor(shape=[by_record.nrows(), steps, size])
    return _zeros_after(dense, by_record.row_lengths(), num_frames, steps)


def join_frames(frames: tf.RaggedTensor, num_frames: tf.Tensor, size: int) -> tf.Tensor:
    """Per record, the bytes of its first `num_frames` frames concatenated: string [B].

    `frames` is [B, (frames), (values)]. Joining (not decoding) keeps a record one
    scalar until a batch is decoded at once. The values of a record are joined
    whatever their frame, then cut at `num_frames` frames of `size` bytes: exact for
    a good record (one value of `size` bytes per frame); a bad one is not used.
    """
    record_splits = tf.gather(frames.values.row_splits, frames.row_splits)
    joined = tf.strings.reduce_join(tf.RaggedTensor.from_row_splits(
        frames.flat_values, record_splits, validate=False), axis=1)
    length = tf.cast(num_frames, tf.int32) * size
    # cut (a copy) only a chunk where a record is longer than that (max_frames, a
    # shorter other feature, a bad record)
    return tf.cond(tf.reduce_all(tf.strings.length(joined) == length), lambda: joined,
                   lambda: tf.strings.substr(joined, tf.zeros_like(length), length))


def decode_frames(frame_bytes: tf.Tensor, steps: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 frames [B, steps, size] from per-record frame bytes string [B]
    (`ParsedRecords.features`): shorter records are padded with zeros."""
    steps = tf.cast(steps, tf.int32)
    # decode_raw needs a positive length: a batch without frames decodes one, then none
    flat = tf.io.decode_raw(frame_bytes, tf.uint8, fixed_length=tf.maximum(steps, 1) * size)
    return tf.reshape(flat, [-1, tf.maximum(steps, 1), size])[:, :steps]


def check_dense_frames(frames: tf.Tensor, lengths: tf.Tensor, name: str, size: int):
    """`check_frames` of a frame feature list parsed dense: (bad [B], a function
    writing the messages [B]).

    `frames` is string [B, T] (one value per frame, "" after each record's frames:
    the parse op fails a record whose frame holds other than one value), `lengths`
    int64 [B] the frames of each record. The message is `check_frames`'s.
    """
    value_bytes = tf.strings.length(frames, unit="BYTE")
    valid = tf.sequence_mask(lengths, tf.shape(frames, out_type=tf.int64)[1])
    wrong = valid & tf.not_equal(value_bytes, size)
    num_wrong = tf.reduce_sum(tf.cast(wrong, tf.int64), axis=1)

    def message():
        # a column more: argmax needs one, and a record without frames has none
        column = tf.zeros_like(wrong[:, :1])
        first = tf.argmax(tf.cast(tf.concat([wrong, column], 1), tf.int32), axis=1,
                          output_type=tf.int64)
        length = tf.gather(tf.concat([value_bytes, tf.cast(column, tf.int32)], 1), first,
                           batch_dims=1)
        return _wrong_bytes(name, first, length, size, num_wrong, lengths)

    return num_wrong > 0, message


def decode_dense(frames: tf.Tensor, lengths: tf.Tensor, num_frames: tf.Tensor,
                 steps: tf.Tensor, size: int) -> tf.Tensor:
    """`decode_ragged` of a frame feature list parsed dense (string [B, T], `lengths`
    int64 [B]): uint8 [B, steps, size], per record its first `num_frames` frames,
    zeros after. Each frame is decoded to `size` bytes (cut or padded with zeros:
    exact for a good record; a bad one is not used)."""
    # the cut is the input itself when the batch has at most `steps` frames
    decoded = tf.io.decode_raw(frames[:, :steps], tf.uint8, fixed_length=size)
    short = steps - tf.shape(decoded, out_type=tf.int64)[1]  # with pad_to_max_frames
    decoded = tf.cond(short > 0,
                      lambda: tf.pad(decoded, tf.stack([[0, 0], [0, short], [0, 0]])),
                      lambda: decoded)
    return _zeros_after(decoded, tf.minimum(lengths, steps), num_frames, steps)


def _zeros_after(decoded: tf.Tensor, held: tf.Tensor, num_frames: tf.Tensor,
                 steps: tf.Tensor) -> tf.Tensor:
    """`decoded` uint8 [B, steps, size] (record b holding `held[b]` frames) with zeros
    after each record's `num_frames`: a copy only for a batch where a record holds
    more (max_frames, a shorter other feature, a bad record)."""
    return tf.cond(
        tf.reduce_any(held > num_frames),
        lambda: tf.where(tf.sequence_mask(num_frames, steps)[:, :, None], decoded,
                         tf.zeros([], tf.uint8)),
        lambda: decoded)


def _wrong_bytes(name, first, length, size, num_wrong, frames) -> tf.Tensor:
    """"feature list <name>: frame <first> has <length> bytes, expected <size>
    (<num_wrong> of <frames> frames wrong)", per record."""
    return tf.strings.join([f"feature list {name}: frame ", tf.strings.as_string(first),
                            " has ", tf.strings.as_string(length),
                            f" bytes, expected {size} (", tf.strings.as_string(num_wrong),
                            " of ", tf.strings.as_string(frames), " frames wrong)"])
