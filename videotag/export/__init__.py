"""SavedModel export for TF Serving."""

from videotag.export.saved_model import build_serving_module, export_saved_model
from videotag.export.serving import ServingModule
from videotag.export.tf_serving import (
    docker_command,
    models_config_text,
    predict_log_bytes,
)

__all__ = [
    "ServingModule",
    "build_serving_module",
    "docker_command",
    "export_saved_model",
    "models_config_text",
    "predict_log_bytes",
]
