"""Build and write YouTube-8M records.

`frame_example` and `video_example` turn numpy arrays into the `tf.train` protos of
the YT8M schema (see `videotag.data.schema`); `RecordWriter` writes serialized records
round-robin into TFRecord shards, under temporary names that are renamed into place
only when the writer is closed without error.
"""

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from videotag.data import schema
from videotag.files import output_errors, replace_file

Record = tf.train.Example | tf.train.SequenceExample | bytes


def _encode_text(value, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what} must be str or bytes, got {type(value).__name__}")


def _check_int(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return int(value)


def _check_labels(labels) -> list[int]:
    if isinstance(labels, (str, bytes)) or not isinstance(
        labels, (Sequence, np.ndarray)
    ):
        raise TypeError(
            f"labels must be a sequence of int, got {type(labels).__name__}"
        )
    if isinstance(labels, np.ndarray) and labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    return [_check_int(label, "each label") for label in labels]


def _check_features(features) -> Mapping:
    if not isinstance(features, Mapping):
        raise TypeError(
            f"features must be a mapping name -> array, got {type(features).__name__}"
        )
    for name in features:
        if not isinstance(name, str) or not name:
            raise TypeError(f"feature names must be non-empty str, got {name!r}")
    return features


def _context(
    video_id, labels, id_key: str, title, category
) -> dict[str, tf.train.Feature]:
    if not isinstance(id_key, str) or not id_key:
        raise TypeError(f"id_key must be a non-empty str, got {id_key!r}")
    ctx = {
        id_key: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[_encode_text(video_id, "video_id")])
        ),
        schema.LABELS_KEY: tf.train.Feature(
            int64_list=tf.train.Int64List(value=_check_labels(labels))
        ),
    }
    if title is not None:
        ctx[schema.TITLE_KEY] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[_encode_text(title, "title")])
        )
    if category is not None:
        ctx[schema.CATEGORY_KEY] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=[_check_int(category, "category")])
        )
    return ctx


def frame_example(
    video_id: str | bytes,
    labels: Sequence[int],
    features: Mapping[str, np.ndarray],
    id_key: str = "id",
    title: str | bytes | None = None,
    category: int | None = None,
    segments: tuple[Sequence[int], Sequence[int], Sequence[float]] | None = None,
) -> tf.train.SequenceExample:
    """Builds a frame-level YT8M record.

    Args:
        video_id: the video id (str is UTF-8 encoded), stored as context `id_key`.
        labels: class ids (ints >= 0), stored as context int64 list `labels`; may be
            empty.
        features: feature list name -> quantized frames, a uint8 array of shape
            [num_frames, size]; each frame becomes one bytes entry of the feature list
            `name`. The mapping's order is kept.
        id_key: context key of the id (`id`; `video_id` in the 2017 release).
        title: optional UTF-8 title, stored as context bytes `title`.
        category: optional category id, stored as context int64 `category`.
        segments: optional YT8M 2019 segment ratings (labels, start times, scores),
            one entry per rated (segment, class) pair, stored as context
            `segment_labels`, `segment_start_times` (int64) and `segment_scores`
            (float).

    Returns:
        The `tf.train.SequenceExample`.

    Raises:
        TypeError: an argument has the wrong type, or a feature is not a uint8 array.
        ValueError: a label or category is negative, or a feature is not 2-D or has
            zero-size frames.
    """
    features = _check_features(features)
    checked = []
    for name, frames in features.items():
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            got = getattr(frames, "dtype", type(frames).__name__)
            raise TypeError(
                f"feature '{name}' must be a uint8 numpy array (quantize floats with "
                f"videotag.data.schema.quantize), got {got}"
            )
        if frames.ndim != 2:
            raise ValueError(
                f"feature '{name}' must be 2-D [num_frames, size], got shape "
                f"{frames.shape}"
            )
        if frames.shape[1] == 0:
            raise ValueError(f"feature '{name}' has zero-size frames: {frames.shape}")
        checked.append((name, frames))

    example = tf.train.SequenceExample()
    for key, feature in _context(video_id, labels, id_key, title, category).items():
        example.context.feature[key].CopyFrom(feature)
    if segments is not None:
        seg_labels, starts, scores = segments
        if not len(seg_labels) == len(starts) == len(scores):
            raise ValueError("segment labels, start times and scores differ in length")
        context = example.context.feature
        context["segment_labels"].int64_list.value.extend(_check_labels(seg_labels))
        context["segment_start_times"].int64_list.value.extend(
            [_check_int(t, "each segment start time") for t in starts])
        context["segment_scores"].float_list.value.extend([float(v) for v in scores])
    for name, frames in checked:
        feature_list = example.feature_lists.feature_list[name]
        width = frames.shape[1]
        data = np.ascontiguousarray(frames).tobytes()
        # Slicing one bytes object and add()/append() is the fastest way to build
        # many small bytes features (about 2x faster than proto constructors).
        for start in range(0, len(data), width):
            feature_list.feature.add().bytes_list.value.append(
                data[start : start + width]
            )
    return example


def video_example(
    video_id: str | bytes,
    labels: Sequence[int],
    features: Mapping[str, np.ndarray],
    id_key: str = "id",
    title: str | bytes | None = None,
    category: int | None = None,
) -> tf.train.Example:
    """Builds a video-level YT8M record.

    Args:
        video_id: the video id (str is UTF-8 encoded), stored as `id_key`.
        labels: class ids (ints >= 0), stored as int64 list `labels`; may be empty.
        features: name -> 1-D float array (e.g. `mean_rgb` [1024], `mean_audio`
            [128]), stored as float lists in the mapping's order.
        id_key: key of the id (`id`; `video_id` in the 2017 release).
        title: optional UTF-8 title, stored as bytes `title`.
        category: optional category id, stored as int64 `category`.

    Returns:
        The `tf.train.Example`.

    Raises:
        TypeError: an argument has the wrong type, or a feature is not numeric.
        ValueError: a label or category is negative, or a feature is not 1-D.
    """
    features = _check_features(features)
    feature_map = _context(video_id, labels, id_key, title, category)
    for name, values in features.items():
        array = np.asarray(values)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(
            array.dtype, np.integer
        )) or array.dtype == np.bool_:
            raise TypeError(
                f"feature '{name}' must be a float array, got dtype {array.dtype}"
            )
        if array.ndim != 1:
            raise ValueError(f"feature '{name}' must be 1-D [size], got {array.shape}")
        feature_map[name] = tf.train.Feature(
            float_list=tf.train.FloatList(value=array.astype(np.float32).tolist())
        )
    return tf.train.Example(features=tf.train.Features(feature=feature_map))


def shard_paths(prefix: str | os.PathLike, num_shards: int) -> list[str]:
    """Returns `<prefix>-00000-of-0000N.tfrecord` ... for `num_shards` shards."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int):
        raise TypeError(f"num_shards must be an int, got {num_shards!r}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    prefix = os.fspath(prefix)
    return [f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]


class RecordWriter:
    """Writes serialized records round-robin into TFRecord shards.

    Record i goes to shard `i % num_shards`. Shards are written under temporary
    names (`<path>.tmp-<pid>`) and swapped in by `close()` (`videotag.files.replace_file`:
    a rename, or write-verify-swap where the file system has no atomic rename); if
    the `with` block raises, or `abort()` is called, the temporary files are deleted
    instead, so an interrupted run never leaves a partial shard under a final name.

    Example:
        with RecordWriter("out/train", num_shards=4) as writer:
            for example in examples:
                writer.write(example)
        writer.count, writer.paths  # records written, the 4 shard paths

    Args:
        target: a path prefix (shards are named `<prefix>-00000-of-0000N.tfrecord`)
            or a sequence of the shard paths themselves.
        num_shards: number of shards for a prefix (default 1); with a list of paths
            it must be None or equal to their number.
        compression: None, "GZIP" or "ZLIB" (TFRecord compression).
    """

    def __init__(
        self,
        target: str | os.PathLike | Sequence[str | os.PathLike],
        num_shards: int | None = None,
        compression: str | None = None,
    ):
        if isinstance(target, (str, os.PathLike)):
            self.paths = shard_paths(target, 1 if num_shards is None else num_shards)
        elif isinstance(target, Sequence) and not isinstance(target, bytes):
            self.paths = [os.fspath(p) for p in target]
            if not self.paths:
                raise ValueError("RecordWriter needs at least one shard path")
            if len(set(self.paths)) != len(self.paths):
                raise ValueError(f"shard paths are not unique: {self.paths}")
            if num_shards is not None and num_shards != len(self.paths):
                raise ValueError(
                    f"num_shards={num_shards} but {len(self.paths)} paths were given"
                )
        else:
            raise TypeError(
                "target must be a path prefix or a list of paths, got "
                f"{type(target).__name__}"
            )
        self.count = 0
        self._temp_paths = [f"{p}.tmp-{os.getpid()}" for p in self.paths]
        self._writers = []
        self._closed = False
        try:
            for path in self._temp_paths:
                parent = os.path.dirname(path)
                if parent and not tf.io.gfile.exists(parent):
                    tf.io.gfile.makedirs(parent)
                self._writers.append(tf.io.TFRecordWriter(path, options=compression))
        except Exception:
            self.abort()
            raise

    @property
    def num_shards(self) -> int:
        """The number of shards."""
        return len(self.paths)

    def write(self, record: Record) -> None:
        """Writes one record (a `tf.train` proto or its serialized bytes).

        Raises:
            TypeError: `record` is neither a proto with `SerializeToString` nor bytes.
            ValueError: the writer is closed.
        """
        if self._closed:
            raise ValueError("write() on a closed RecordWriter")
        if isinstance(record, bytes):
            data = record
        elif isinstance(record, (tf.train.Example, tf.train.SequenceExample)):
            data = record.SerializeToString()
        else:
            raise TypeError(
                "record must be a tf.train.Example, tf.train.SequenceExample or "
                f"bytes, got {type(record).__name__}"
            )
        shard = self.count % len(self._writers)
        with output_errors(self.paths[shard], "record shard"):
            self._writers[shard].write(data)
        self.count += 1

    def close(self) -> None:
        """Flushes and closes every shard and swaps it in under its final name.

        Raises:
            OutputError: a shard could not be written (no space left, ...), naming it.
        """
        if self._closed:
            return
        self._closed = True
        for writer, path in zip(self._writers, self.paths):
            with output_errors(path, "record shard"):
                writer.close()
        for temp, final in zip(self._temp_paths, self.paths):
            replace_file(temp, final)

    def abort(self) -> None:
        """Closes the shards and deletes them; no final file is created."""
        self._closed = True
        for writer in self._writers:
            try:
                writer.close()
            except Exception:  # already failing: deleting the files matters more
                pass
        for temp in self._temp_paths:
            if tf.io.gfile.exists(temp):
                tf.io.gfile.remove(temp)

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_records(path: str | os.PathLike, examples: Iterable[Record]) -> int:
    """Writes records into the single TFRecord file `path`.

    Args:
        path: the output file (written under a temporary name, renamed when done).
        examples: `tf.train.Example` / `tf.train.SequenceExample` protos or bytes.

    Returns:
        The number of records written.
    """
    with RecordWriter([path]) as writer:
        for example in examples:
            writer.write(example)
    return writer.count
