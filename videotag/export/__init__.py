"""SavedModel export for TF Serving and prediction writers (CSV, JSON)."""

from videotag.export.predict import (
    predict_from_model_dir,
    predict_from_saved_model,
    write_predictions,
)
from videotag.export.saved_model import ServingModule, export_saved_model

__all__ = [
    "ServingModule",
    "export_saved_model",
    "predict_from_model_dir",
    "predict_from_saved_model",
    "write_predictions",
]
