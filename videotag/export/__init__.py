"""SavedModel export for TF Serving and prediction writers (CSV, JSON, JSON Lines)."""

from videotag.export.predict import (
    FORMATS,
    Prediction,
    load_saved_model,
    model_dir_batches,
    predict_from_model_dir,
    predict_from_saved_model,
    saved_model_batches,
    write_predictions,
    write_predictions_file,
)
from videotag.export.saved_model import build_serving_module, export_saved_model
from videotag.export.serving import ServingModule
from videotag.export.tf_serving import (
    docker_command,
    models_config_text,
    predict_log_bytes,
)

__all__ = [
    "FORMATS",
    "Prediction",
    "ServingModule",
    "build_serving_module",
    "docker_command",
    "export_saved_model",
    "load_saved_model",
    "model_dir_batches",
    "models_config_text",
    "predict_from_model_dir",
    "predict_from_saved_model",
    "predict_log_bytes",
    "saved_model_batches",
    "write_predictions",
    "write_predictions_file",
]
