"""videotag: video classification models for YouTube-8M-style data, on TF2 / Keras 3."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "videotag needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
        f"'{keras.backend.backend()}': set KERAS_BACKEND=tensorflow"
    )

from videotag import config  # noqa: E402
from videotag.registry import build_model, list_models, register_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_model", "config", "list_models", "register_model", "__version__"]
