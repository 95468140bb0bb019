"""Video-level records from frame-level ones: the mean of each feature's dequantized
frames, as YT8M's video-level features are (`mean_rgb`, `mean_audio`).

`video_level_record` turns one frame-level SequenceExample into the video-level
Example of the same video (its context kept: id, labels, title, category), and
`write_video_level` does it for shards. Each feature is averaged over all of its own
frames (rgb and audio may differ in length), in float64.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from videotag.data import schema
from videotag.data.writer import RecordWriter
from videotag.errors import DataError

MEAN_PREFIX = "mean_"


def video_level_record(serialized: bytes, sizes: Mapping[str, int]) -> bytes:
    """The video-level Example of a serialized frame-level record.

    Args:
        serialized: a frame-level SequenceExample.
        sizes: frame feature name -> bytes per frame (e.g. {"rgb": 1024, "audio":
            128}); each becomes the float feature `mean_<name>` [size].

    Raises:
        ValueError: the record is not a SequenceExample, or a feature list is
            missing, empty or has frames of another size.
    """
    try:
        record = tf.train.SequenceExample.FromString(serialized)
    except DecodeError:
        raise ValueError("not a SequenceExample") from None
    example = tf.train.Example()
    for key, feature in record.context.feature.items():
        example.features.feature[key].CopyFrom(feature)
    for name, size in sizes.items():
        frames = record.feature_lists.feature_list[name].feature
        if not frames:
            raise ValueError(f"feature list {name} has no frames")
        data = b"".join(b"".join(f.bytes_list.value) for f in frames)
        if len(data) != len(frames) * size:
            raise ValueError(f"feature list {name} has frames that are not {size} bytes")
        codes = np.frombuffer(data, np.uint8).reshape(len(frames), size)
        mean = schema.dequantize(codes).mean(axis=0, dtype=np.float64)
        example.features.feature[MEAN_PREFIX + name].float_list.value.extend(
            mean.astype(np.float32).tolist())
    return example.SerializeToString()


def write_video_level(files: Sequence[str], paths: Sequence[str],
                      sizes: Mapping[str, int]) -> int:
    """Writes the video-level records of every record of `files` into the shards
    `paths` (round-robin; each renamed into place when complete).

    Returns:
        The number of records written.

    Raises:
        DataError: a record cannot be converted (naming the file and record).
    """
    with RecordWriter(list(paths)) as writer:
        for path in files:
            for index, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
                try:
                    writer.write(video_level_record(record, sizes))
                except ValueError as exc:
                    raise DataError(f"{path}: record {index}: {exc}") from None
    return writer.count
