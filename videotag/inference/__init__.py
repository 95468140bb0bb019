"""Inference: predictions from a model directory or a SavedModel (`predict`), written
as CSV, JSON or JSON Lines (`writers`)."""

from videotag.inference.predict import (
    Prediction,
    load_saved_model,
    model_dir_batches,
    predict_from_model_dir,
    predict_from_saved_model,
    saved_model_batches,
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
    "json_line",
    "load_saved_model",
    "model_dir_batches",
    "predict_from_model_dir",
    "predict_from_saved_model",
    "saved_model_batches",
    "write_predictions",
    "write_predictions_file",
]
