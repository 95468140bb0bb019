"""Finding and reading TFRecord shards, corrupt or truncated ones included.

A damaged shard (a CRC error, or a file cut short) fails the read where the damage
starts. `read_shard` can instead read it up to the damage and say where it stopped
(for `data.on_bad_record=skip`); `find_corrupt_record` names the first unreadable
record of a list of shards, for the error message when reading stops.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import tensorflow as tf

from videotag.errors import DataError

# TFRecord framing per record: 8-byte length, 4-byte length CRC, data, 4-byte data CRC.
_RECORD_OVERHEAD = 16


def list_files(pattern: str) -> List[str]:
    """Files matching a glob (several globs may be joined by commas), sorted.

    Raises:
        DataError: the pattern is empty, matches no file, or matches only empty files
            (a TFRecord file without records has 0 bytes; the files are looked at
            until the first that is not empty, usually the first).
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
    if all(tf.io.gfile.stat(f).length == 0 for f in files):  # stops at a non-empty one
        raise DataError(f"the {len(files)} file(s) matching the data pattern '{pattern}' are "
                        f"all empty: there are no records to read (e.g. {files[0]})")
    return files


def read_shard(filename: tf.Tensor, size: tf.Tensor, skip_corrupt: bool) -> tf.data.Dataset:
    """(record, filename, index) of every record of one shard.

    With `skip_corrupt`, reading stops at a corrupt or truncated record instead of
    failing (nothing after the damage can be read), and a marker follows the last
    record: index -1 when the records read add up to the file's `size` in bytes, or
    -2 - (records read) when the shard was damaged. `keep_record` drops the markers.
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


def keep_record(record, filename, index, skip_counter) -> tf.Tensor:
    """False for the end-of-shard markers of `read_shard`; a damaged shard's marker
    prints a warning and is counted in `skip_counter` (a `SkipCounter`)."""
    damaged = index < -1

    def report():
        tf.print(tf.strings.join(["warning: ", filename, " is corrupt or truncated at record ",
                                  tf.strings.as_string(-2 - index),
                                  "; the rest of this shard is skipped"]),
                 output_stream=sys.stderr)
        skip_counter.add_corrupt_shard()
        return tf.constant(False)

    return tf.cond(damaged, report, lambda: index >= 0)


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
