"""YT8M records: schema, parsing, tf.data pipelines, label names, writer, demo data."""

from videotag.data.labels import load_label_names
from videotag.data.frames import decode_frames
from videotag.data.parsing import PARSE_REASONS, ParsedRecords, RecordParser
from videotag.data.pipeline import (
    for_keras,
    input_signature,
    make_dataset,
    model_inputs,
    targets,
)
from videotag.data.shards import find_corrupt_record, list_files
from videotag.data.skips import REASONS, SkipCounter
from videotag.data.tf_errors import data_errors, translate_error

__all__ = [
    "PARSE_REASONS",
    "REASONS",
    "ParsedRecords",
    "RecordParser",
    "SkipCounter",
    "data_errors",
    "decode_frames",
    "find_corrupt_record",
    "for_keras",
    "input_signature",
    "list_files",
    "load_label_names",
    "make_dataset",
    "model_inputs",
    "targets",
    "translate_error",
]
