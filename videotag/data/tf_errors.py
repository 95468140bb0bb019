"""TensorFlow errors caused by bad input data, turned into `DataError`s.

A bad record stops the tf.data pipeline with an assertion (`fail_on_bad_records`)
whose payload is the parser's message; a corrupt shard with a DataLossError; a
record that is not a protocol message at all, or (in the training pipeline's dense
frame parse) whose frame holds other than one value, with the parse op's own complaint.
`translate_error` turns each into a one-line `DataError` naming the file, record and
key; `data_errors()` does so around any code that iterates a pipeline. A record whose
key holds values of another type ("Data types don't match") is read again and
described by the parser's own type check (`videotag.data.kinds`), with its id.
"""

from __future__ import annotations

import base64
import contextlib
import re
from typing import Dict, Iterator, List, Optional

import tensorflow as tf

from videotag.data.shards import find_corrupt_record
from videotag.errors import DataError

_ERROR_MARK = "VIDEOTAG_DATA_ERROR"
# How the parse ops name a record they cannot read ("example id: <name>" for a record
# that is not a protocol message, "Name: <name>, ..." for a value of the wrong type).
_UNPARSEABLE = re.compile(
    r"Invalid protocol message input, example id: (?P<name>.*?record \d+)"
    r"|Name: (?P<named>.*?record \d+), (?P<why>[^\n\[]*)")


def fail_on_bad_records(features: Dict, bad: tf.Tensor, errors: tf.Tensor) -> Dict:
    """`features`, once an assertion has checked that no record of the batch is bad.

    The assertion carries the first bad record's message (`ParsedRecords.errors`),
    which `translate_error` recovers.
    """
    first = tf.boolean_mask(errors, tf.reduce_any(bad, axis=1))[:1]
    # base64 keeps the message intact through the assertion's own quoting
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)),
                                [_ERROR_MARK, tf.io.encode_base64(tf.strings.reduce_join(first))],
                                summarize=1)
    with tf.control_dependencies([check]):
        return tf.nest.map_structure(tf.identity, features)


# TensorFlow's complaint about a value of another type than asked, and the dtypes.
_WRONG_TYPE = re.compile(
    r"Name: (?P<file>.*): record (?P<index>\d+), (?P<where>Feature list|Context feature|Feature):"
    r" (?P<key>[^,\s]+).*?Data types don't match\. Expected type: (?P<dtype>\w+)", re.DOTALL)
_DTYPES = {"string": tf.string, "float": tf.float32, "int64": tf.int64}
# The dense frame parse's complaint about a frame holding other than one value.
_VALUE_COUNT = re.compile(
    r"Name: (?P<file>.*): record (?P<index>\d+), Key: (?P<key>[^,\s]+), Index: (?P<frame>\d+)\."
    r"\s+Number of values != expected\.\s+values size: (?P<values>\d+)")


def describe_wrong_type(text: str) -> Optional[str]:
    """"<file>: record <i> (id <id>): <key> holds <kind> values, expected <kind>" for a
    parse op's "Data types don't match" about a record of a shard, else None.

    The record is read again from its shard and its types described by
    `videotag.data.kinds.check_kinds`; when it cannot be read, TensorFlow's words are
    kept.
    """
    from videotag.data.kinds import check_kinds, dtype_name
    from videotag.data.parsing import ID_KEYS

    match = _WRONG_TYPE.search(text)
    if match is None or match.group("dtype") not in _DTYPES:
        return None
    file, index = match.group("file"), int(match.group("index"))
    key = match.group("key").rstrip(".")
    dtype = _DTYPES[match.group("dtype")]
    frame_level = match.group("where") != "Feature"
    where = f"{file}: record {index}"
    fallback = (f"{where}: {'feature list' if match.group('where') == 'Feature list' else 'key'} "
                f"{key} holds values of another type than {dtype_name(dtype)}")
    record = _read_record(file, index)
    if record is None:
        return fallback
    lists = {key: dtype} if match.group("where") == "Feature list" else {}
    context = {} if lists else {key: dtype}
    for id_key in ID_KEYS:
        context.setdefault(id_key, tf.string)
    kinds = [check_kinds(record[None], tf.constant([where]), frame_level, context, lists, id_key)
             for id_key in ID_KEYS]
    found = next((k for k in kinds if k.video_id.numpy()[0]), kinds[0])
    if not found.wrong.numpy()[0]:
        return fallback
    video_id = found.video_id.numpy()[0].decode("utf-8", "replace")
    header = f" (id {video_id})" if video_id else " (no id)"
    return f"{where}{header}: {found.message().numpy()[0].decode('utf-8', 'replace')}"


def describe_value_count(text: str) -> Optional[str]:
    """"<file>: record <i> (id <id>): feature list <key>: frame <j> holds <n> values,
    expected one" (the checking parser's words) for the dense frame parse's "Number of
    values != expected" about a record of a shard, else None."""
    from videotag.data.parsing import ID_KEYS

    match = _VALUE_COUNT.search(text)
    if match is None:
        return None
    file, index = match.group("file"), int(match.group("index"))
    record = _read_record(file, index)
    video_id = ""
    if record is not None:
        context = tf.train.SequenceExample.FromString(record.numpy()).context.feature
        video_id = next((context[k].bytes_list.value[0].decode("utf-8", "replace")
                         for k in ID_KEYS if k in context and context[k].bytes_list.value), "")
    header = f" (id {video_id})" if video_id else " (no id)"
    return (f"{file}: record {index}{header}: feature list {match.group('key')}: frame "
            f"{match.group('frame')} holds {match.group('values')} values, expected one")


def _read_record(file: str, index: int) -> Optional[tf.Tensor]:
    """Record `index` of shard `file`, None when it cannot be read."""
    try:
        return next(iter(tf.data.TFRecordDataset(file).skip(index).take(1)))
    except (StopIteration, tf.errors.OpError):
        return None


def bad_record_error(detail: str) -> DataError:
    """The error that stops a run at a bad record (`data.on_bad_record=error`);
    `detail` is the parser's "<file>: record <i> (id <id>): <problem>"."""
    return DataError(f"bad record: {detail.strip()} (set data.on_bad_record=skip to drop and "
                     "count such records)")


def describe_parse_failure(text: str) -> Optional[str]:
    """"<record name>: <problem>" for a parse op's error about one record, else None."""
    match = _UNPARSEABLE.search(text)
    if match is None:
        return None
    if match.group("name"):  # only ParseSequenceExample names such a record
        return f"{match.group('name')}: not a serialized SequenceExample"
    why = " ".join(match.group("why").split()).rstrip(". ")
    return f"{match.group('named')}: {why}"


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
        return bad_record_error(detail)
    wrong_type = describe_wrong_type(text) or describe_value_count(text)
    if wrong_type:
        return bad_record_error(wrong_type)
    unparseable = describe_parse_failure(text)
    if unparseable:
        return DataError(f"bad record: {unparseable}")
    if "Could not parse example input" in text:  # ParseExample does not name the record
        return DataError("bad record: a record is not a serialized Example")
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


@contextlib.contextmanager
def data_errors(files: Optional[List[str]] = None) -> Iterator[None]:
    """Inside, a TensorFlow error caused by bad input data is raised as a `DataError`
    (see `translate_error`); any other error passes unchanged.

    Args:
        files: the shards being read, to locate a corrupt record.
    """
    try:
        yield
    except tf.errors.OpError as exc:
        error = translate_error(exc, files)
        if error is None:
            raise
        raise error from None
