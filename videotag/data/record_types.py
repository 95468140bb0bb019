"""Frame-level or video-level: which type of YT8M record a shard holds
(`data.record_type`).

A frame-level record is a `tf.train.SequenceExample` whose feature lists hold the
frames (`rgb`, `audio`); a video-level record is a `tf.train.Example` whose features
hold the mean of each feature (`mean_rgb`, `mean_audio`, floats). The two parse as
each other without an error (an Example is a SequenceExample without feature lists),
so records of the wrong kind would only fail record by record ("the video has no
frames"). `check_record_type` looks at the first record of the first shard before
anything else runs and names both kinds in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

import tensorflow as tf
from google.protobuf.message import DecodeError

from videotag.config.schema import RECORD_KINDS as KINDS
from videotag.errors import DataError

if TYPE_CHECKING:
    from videotag.config import DataConfig


def first_record(path: str) -> Optional[bytes]:
    """The first record of a TFRecord file, or None when the file is empty, damaged
    or unreadable (the pipeline then reports the damage itself)."""
    try:
        for record in tf.data.TFRecordDataset(path).take(1):
            return record.numpy()
    except (OSError, tf.errors.OpError):
        return None
    return None


def record_type(serialized: bytes) -> Tuple[Optional[str], List[str]]:
    """(record type, feature names) of a serialized record: ("frame", its non-empty
    feature lists), ("video", its float context features named `mean_*`), or
    (None, []) when it is neither (not a protocol message, or no features of either
    kind)."""
    try:
        record = tf.train.SequenceExample.FromString(serialized)
    except DecodeError:
        return None, []
    lists = sorted(k for k, v in record.feature_lists.feature_list.items() if len(v.feature))
    if lists:
        return "frame", lists
    means = sorted(k for k, v in record.context.feature.items()
                   if k.startswith("mean_") and v.WhichOneof("kind") == "float_list")
    return ("video", means) if means else (None, [])


def _describe(kind: str, names) -> str:
    names = ", ".join(names)
    return (f"SequenceExample with frame feature lists {names}" if kind == "frame"
            else f"Example with mean features {names}")


def check_record_type(cfg: "DataConfig", files: List[str]) -> None:
    """Stops when the first record of `files` is not of the kind `cfg.record_type`
    names (the kind of the model: `videotag.config.Config.validate` makes them agree).

    Raises:
        DataError: one line naming the file, the kind found and the kind needed.
    """
    if not files:
        return
    data = first_record(files[0])
    kind, names = record_type(data) if data is not None else (None, [])
    need = cfg.record_type
    if kind is None or kind == need:
        return
    from videotag.registry import models_reading  # late: the registry imports the models

    models = models_reading(kind)
    models = ", ".join(models if len(models) <= 4 else models[:3] + ["..."]) or "none"
    raise DataError(
        f"{files[0]}: record 0 is a {KINDS[kind]} record ({_describe(kind, names)}) but the "
        f"model reads {KINDS[need]} records (data.record_type={need}: "
        f"{_describe(need, cfg.feature_names)}); use a {KINDS[kind]} model ({models}) or "
        f"{KINDS[need]} records")
