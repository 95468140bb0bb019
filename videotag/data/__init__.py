"""YT8M records: schema, parsing, tf.data pipelines, label names, writer, demo data."""

from videotag.data.labels import load_label_names
from videotag.data.reader import (
    SkipCounter,
    find_corrupt_record,
    for_keras,
    list_files,
    make_dataset,
    model_inputs,
    translate_error,
)

__all__ = [
    "SkipCounter",
    "find_corrupt_record",
    "for_keras",
    "list_files",
    "load_label_names",
    "make_dataset",
    "model_inputs",
    "translate_error",
]
