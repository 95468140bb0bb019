"""Inference: predictions from a model directory or a SavedModel (`predict`), written
as CSV, JSON or JSON Lines (`writers`); segment predictions, written as a timeline and
a segment submission (`segments`)."""

from videotag.inference.predict import (
    Prediction,
    load_saved_model,
    model_dir_batches,
    predict_from_model_dir,
    predict_from_saved_model,
    saved_model_batches,
)
from videotag.inference.segments import (
    SegmentPrediction,
    predict_segments_from_model_dir,
    predict_segments_from_saved_model,
    write_segment_predictions,
)
from videotag.inference.writers import (
    FORMATS,
    json_line,
    write_predictions,
    write_predictions_file,
)

__all__ = [
    "FORMATS",
    "Prediction",
    "SegmentPrediction",
    "json_line",
    "load_saved_model",
    "model_dir_batches",
    "predict_from_model_dir",
    "predict_from_saved_model",
    "predict_segments_from_model_dir",
    "predict_segments_from_saved_model",
    "saved_model_batches",
    "write_predictions",
    "write_predictions_file",
    "write_segment_predictions",
]
