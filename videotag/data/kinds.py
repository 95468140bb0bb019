"""The value types of a record's features, read from the protobuf wire format.

TensorFlow's parse ops fail a whole batch when one record holds a key with values of
another type than asked (frames stored as float lists instead of bytes, labels as
strings): "Data types don't match". `check_kinds` finds such records first, one flag
and one message each, so that the record parser (`videotag.data.parsing`) can set
them aside and describe them like any other bad record. It reads only the structure
of the messages (`tf.io.decode_proto` down to each `tf.train.Feature`, whose first
byte says which of `bytes_list`, `float_list` and `int64_list` it holds), never the
values, in core TensorFlow ops, so a served model runs it too.
"""

from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Optional

import tensorflow as tf

# The kinds of a tf.train.Feature by the tag of its oneof field (field 1, 2 or 3,
# length-delimited): 0 when it holds no value at all.
KIND_NAMES = ("no value", "bytes", "float", "int64")
_TAGS = (b"\x0a", b"\x12", b"\x1a")
_DTYPE_KINDS = {tf.string: 1, tf.float32: 2, tf.int64: 3}
_NO_KEY = "\x00videotag: no record has this key"


class Kinds(NamedTuple):
    """What `check_kinds` finds in a batch of B records.

    Attributes:
        wrong: bool [B], a key the parser reads holds values of another type.
        keys: string [B, (keys)], the context keys (an Example's feature keys) of
            each record, all of them, whatever their values.
        held: bool [B, (keys)], the key holds a value: its serialized Feature is
            longer than the two bytes of an empty list.
        video_id: string [B], the first bytes value of the id key ("" when none).
        message: a function returning string [B]: for each record the keys of the
            wrong type and what they hold ("" for a good record).
    """

    wrong: tf.Tensor
    keys: tf.RaggedTensor
    held: tf.RaggedTensor
    video_id: tf.Tensor
    message: Callable[[], tf.Tensor]


def dtype_name(dtype: tf.DType) -> str:
    """How a record's values of `dtype` are called in messages: bytes, float, int64."""
    return KIND_NAMES[_DTYPE_KINDS[dtype]]


def _kind(features: tf.Tensor) -> tf.Tensor:
    """int32 kind (an index of KIND_NAMES) of serialized tf.train.Feature messages."""
    first = tf.strings.substr(features, 0, 1)
    kind = tf.zeros(tf.shape(first), tf.int32)
    for code, tag in enumerate(_TAGS, start=1):
        kind = tf.where(first == tag, code, kind)
    return kind


def _decode(messages: tf.Tensor, message_type: str, fields: List[str], dtypes: List[tf.DType]):
    """`tf.io.decode_proto` of string [N] messages, for any N (the op refuses N = 0):
    (sizes [N, fields], [values [N, max count] per field])."""
    padded = tf.concat([messages, [""]], 0)
    sizes, values = tf.io.decode_proto(padded, message_type, fields, dtypes)
    return sizes[:-1], [v[:-1] for v in values]


def _map(messages: tf.Tensor, message_type: str, field: str):
    """(keys, values) ragged [B, (entries)] of the map `field` of each serialized
    message of `message_type`; values stay serialized."""
    sizes, (entries,) = _decode(messages, message_type, [field], [tf.string])
    entries = tf.RaggedTensor.from_tensor(entries, lengths=sizes[:, 0])
    entry_type = f"{message_type}.{field.title().replace('_', '')}Entry"
    _, (keys, values) = _decode(entries.flat_values, entry_type, ["key", "value"],
                                           [tf.string, tf.string])
    return entries.with_flat_values(keys[:, 0]), entries.with_flat_values(values[:, 0])


def _fields(messages: tf.Tensor, message_type: str, fields: List[str]) -> List[tf.Tensor]:
    """The serialized message of each of `fields` of each serialized message ("" when
    absent), read in one pass over the messages."""
    _, values = _decode(messages, message_type, fields, [tf.string] * len(fields))
    return [tf.reshape(tf.concat([v, tf.fill([tf.shape(v)[0], 1], "")], 1)[:, :1], [-1])
            for v in values]


def _field(messages: tf.Tensor, message_type: str, field: str) -> tf.Tensor:
    """The serialized message `field` of each serialized message ("" when absent)."""
    return _fields(messages, message_type, [field])[0]


def _of_key(keys: tf.RaggedTensor, values: tf.RaggedTensor, key: str, default) -> tf.Tensor:
    """Per row, the value of the (last) entry named `key`; `default` when there is none.
    `values` has the row partition of `keys`; its flat values may be [E] or [E, d]."""
    found = tf.ragged.boolean_mask(values, tf.equal(keys, key))
    flat = found.flat_values
    default = tf.cast(tf.broadcast_to(default, tf.shape(flat)[1:]), flat.dtype)
    flat = tf.concat([flat, default[None]], 0)
    none = tf.shape(found.flat_values, out_type=found.row_splits.dtype)[0]
    return tf.gather(flat, tf.where(found.row_lengths() > 0, found.row_limits() - 1, none))


def _well_formed(serialized: tf.Tensor, names: tf.Tensor, frame_level: bool) -> tf.Tensor:
    """`serialized`, once a parse op asking for a key no record has has read every
    record: a record that is not a protocol message fails it, named by `names`
    (decoding it further would fail without naming it)."""
    spec = {_NO_KEY: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64)}
    if frame_level:
        parsed = tf.io.parse_sequence_example(serialized, context_features=spec,
                                              example_names=names)[0]
    else:
        parsed = tf.io.parse_example(serialized, spec, example_names=names)
    # a data dependency (a control one on an op whose output goes unused is dropped in
    # a tf.function): no record holds the key, so the last split is 0
    after = tf.range(tf.size(serialized, out_type=tf.int64)) + parsed[_NO_KEY].row_splits[-1]
    return tf.gather(serialized, after)


def check_kinds(serialized: tf.Tensor, names: tf.Tensor, frame_level: bool,
                context: Dict[str, tf.DType], lists: Dict[str, tf.DType], id_key: str,
                hints: Optional[Dict[str, str]] = None) -> Kinds:
    """Finds the records of a batch whose keys hold values of another type than asked.

    Args:
        serialized: string [B], SequenceExamples (`frame_level`) or Examples.
        names: string [B], the records' names, for the parse op's error about a
            record that is not a protocol message at all (which fails the batch).
        frame_level: the records are SequenceExamples.
        context: the dtype the parser reads each context (or Example) key as.
        lists: the dtype of each feature list (frame-level).
        id_key: the key of the video id (for `Kinds.video_id`).
        hints: per key, what its values should be, added to its messages (e.g.
            "one value of 1024 bytes per frame").

    A key that is absent, or holds no value, is not of the wrong type.
    """
    serialized = _well_formed(serialized, names, frame_level)
    top, field = (("tensorflow.SequenceExample", "context") if frame_level
                  else ("tensorflow.Example", "features"))
    # a SequenceExample's two fields are read in one pass
    read_lists = frame_level and bool(lists)
    parts = _fields(serialized, top, [field, "feature_lists"] if read_lists else [field])
    keys, values = _map(parts[0], "tensorflow.Features", "feature")
    kinds = tf.ragged.map_flat_values(_kind, values)
    held = tf.ragged.map_flat_values(lambda v: tf.strings.length(v) > 2, values)
    wrong: List[tf.Tensor] = []
    messages: List[Callable[[], tf.Tensor]] = []
    noun = "context key" if frame_level else "feature"
    hints = {k: f" ({v})" for k, v in (hints or {}).items()}
    for key, dtype in context.items():
        kind = _of_key(keys, kinds, key, 0)
        expected = _DTYPE_KINDS[dtype]
        wrong.append((kind != 0) & (kind != expected))
        messages.append(lambda kind=kind, key=key, dtype=dtype: tf.strings.join([
            f"{noun} {key} holds ", tf.gather(KIND_NAMES, kind),
            f" values, expected {dtype_name(dtype)}{hints.get(key, '')}"]))
    if read_lists:
        list_keys, list_values = _map(parts[1], "tensorflow.FeatureLists", "feature_list")
        sizes, (frames,) = _decode(list_values.flat_values, "tensorflow.FeatureList",
                                              ["feature"], [tf.string])
        frame_kinds = tf.RaggedTensor.from_tensor(_kind(frames), lengths=sizes[:, 0])
        for key, dtype in lists.items():
            expected = _DTYPE_KINDS[dtype]
            bad = (frame_kinds != 0) & (frame_kinds != expected)
            first = tf.cast(tf.argmax(tf.concat([tf.cast(bad, tf.int32).to_tensor(),
                                                 tf.ones([tf.shape(frames)[0], 1], tf.int32)], 1),
                                      axis=1), tf.int32)
            kind_of_first = tf.gather(tf.concat([frame_kinds.to_tensor(),
                                                 tf.zeros([tf.shape(frames)[0], 1], tf.int32)], 1),
                                      first, batch_dims=1)
            per_entry = tf.stack([tf.cast(tf.reduce_any(bad, axis=1), tf.int32), first,
                                  kind_of_first], axis=1)
            found = _of_key(list_keys, list_keys.with_flat_values(per_entry), key, 0)
            wrong.append(found[:, 0] > 0)
            messages.append(lambda found=found, key=key, dtype=dtype: tf.strings.join([
                f"feature list {key}: frame ", tf.strings.as_string(found[:, 1]), " holds ",
                tf.gather(KIND_NAMES, found[:, 2]),
                f" values, expected {dtype_name(dtype)}{hints.get(key, '')}"]))
    count = tf.shape(serialized)[0]
    if not wrong:
        return Kinds(tf.zeros([count], tf.bool), keys, held, tf.fill([count], ""),
                     lambda: tf.fill([count], ""))
    wrong_stack = tf.stack(wrong, axis=1)

    def message():
        from videotag.data.parsing import _join_masked

        return _join_masked(tf.stack([m() for m in messages], axis=1), wrong_stack, "; ")

    id_feature = _of_key(keys, values, id_key, "")
    bytes_list = _field(tf.where(_kind(id_feature) == 1, id_feature, ""), "tensorflow.Feature",
                        "bytes_list")
    _, (ids,) = _decode(bytes_list, "tensorflow.BytesList", ["value"], [tf.string])
    video_id = tf.concat([ids, tf.fill([count, 1], "")], 1)[:, 0]
    return Kinds(tf.reduce_any(wrong_stack, axis=1), keys, held, video_id, message)


def _values(features: tf.Tensor, kinds: tf.Tensor) -> List[tuple]:
    """(kind name, value count, bytes of the first value) of serialized Features."""
    out = []
    for feature, kind in zip(features.numpy().tolist(), kinds.numpy().tolist()):
        if kind == 0:
            out.append((KIND_NAMES[0], 0, 0))
            continue
        field = ("bytes_list", "float_list", "int64_list")[kind - 1]
        inner = _field(tf.constant([feature]), "tensorflow.Feature", field)
        dtype = (tf.string, tf.float32, tf.int64)[kind - 1]
        sizes, (values,) = _decode(
            inner, f"tensorflow.{field.title().replace('_', '')}", ["value"], [dtype])
        count = int(sizes[0, 0])
        first = len(values.numpy()[0, 0]) if kind == 1 and count else 0
        out.append((KIND_NAMES[kind], count, first))
    return out


def record_layout(record: bytes) -> Dict[str, Dict[str, dict]]:
    """The keys of one serialized record and what they hold, read eagerly.

    Returns:
        {"context": {key: {"kind", "values", "first_bytes"}}, "lists": {key: {"kind"
        (of its first frame), "frames", "values" (of its first frame), "first_bytes"}}};
        an Example (video-level record) has its features as "context" and no lists.
    """
    serialized = tf.constant([record])
    keys, values = _map(_field(serialized, "tensorflow.SequenceExample", "context"),
                        "tensorflow.Features", "feature")
    context = {}
    for key, (kind, count, first) in zip(keys.flat_values.numpy().tolist(),
                                         _values(values.flat_values,
                                                 _kind(values.flat_values))):
        context[key.decode("utf-8", "replace")] = {"kind": kind, "values": count,
                                                   "first_bytes": first}
    list_keys, list_values = _map(_field(serialized, "tensorflow.SequenceExample",
                                         "feature_lists"),
                                  "tensorflow.FeatureLists", "feature_list")
    lists = {}
    for key, value in zip(list_keys.flat_values.numpy().tolist(),
                          list_values.flat_values.numpy().tolist()):
        sizes, (frames,) = _decode(tf.constant([value]), "tensorflow.FeatureList",
                                              ["feature"], [tf.string])
        count = int(sizes[0, 0])
        kind, values_, first = (_values(frames[0, :1], _kind(frames[0, :1]))[0] if count
                                else (KIND_NAMES[0], 0, 0))
        lists[key.decode("utf-8", "replace")] = {"kind": kind, "frames": count,
                                                 "values": values_, "first_bytes": first}
    return {"context": context, "lists": lists}
