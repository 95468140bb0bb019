"""Files TF Serving reads beside a SavedModel: the warm-up requests and models.config.

Warm-up: TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests`, a
TFRecord file of `tensorflow.serving.PredictionLog` protos, when it loads a version
and before it serves it, so the first real request does not pay for graph
optimisation and kernel set-up. The messages are TF Serving's own, from the
tensorflow-serving-api package (`tensorflow_serving.apis`); the tensors are
TensorFlow's `TensorProto`s (`tf.make_tensor_proto`).

models.config: a text-format `tensorflow.serving.ModelServerConfig`
(`tensorflow_serving.config`), written with protobuf's text format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
# The first line of a models.config this project writes; another file is left alone.
CONFIG_MARK = "# videotag: TF Serving model config"


def predict_log_bytes(model_name: str, signature_name: str,
                      inputs: Dict[str, np.ndarray]) -> bytes:
    """A serialized PredictionLog holding one PredictRequest.

    Args:
        model_name: ModelSpec.name (the serving model name).
        signature_name: ModelSpec.signature_name.
        inputs: the request's tensors by input name (NumPy arrays; bytes objects
            for strings).
    """
    log = prediction_log_pb2.PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    # deterministic: map entries in key order, so the file is reproducible
    return log.SerializeToString(deterministic=True)


def write_warmup_file(path: os.PathLike, model_name: str,
                      requests: Iterable[Tuple[str, Dict[str, np.ndarray]]]) -> int:
    """Writes (signature name, inputs) requests as a TF Serving warm-up file.

    Returns the number of requests written (TF Serving reads at most 1000).
    """
    count = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            writer.write(predict_log_bytes(model_name, signature, inputs))
            count += 1
    return count


def parse_predict_log(data: bytes) -> Tuple[str, str, Dict[str, np.ndarray]]:
    """(model name, signature name, inputs) of a serialized PredictionLog holding a
    PredictLog: the inverse of `predict_log_bytes`.

    Raises:
        ValueError: `data` is not a PredictionLog holding a predict_log.
    """
    log = prediction_log_pb2.PredictionLog.FromString(data)
    if log.WhichOneof("log_type") != "predict_log":
        raise ValueError("not a PredictionLog with a predict_log")
    request = log.predict_log.request
    inputs = {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}
    return request.model_spec.name, request.model_spec.signature_name, inputs


def read_warmup_file(path: os.PathLike) -> List[Tuple[str, str, Dict[str, np.ndarray]]]:
    """Every request of a warm-up file, as `parse_predict_log` gives them."""
    return [parse_predict_log(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]


def models_config_text(models: List[Tuple[str, str]]) -> str:
    """A TF Serving `--model_config_file` (text protobuf ModelServerConfig).

    Args:
        models: (serving name, base path as the server sees it) pairs.
    """
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models:
        config.model_config_list.config.add(
            name=name, base_path=base_path, model_platform="tensorflow")
    header = [
        CONFIG_MARK,
        "# tensorflow_model_server --model_config_file=/models/models.config serves every",
        "# model below, each at the highest integer version under its base_path. Rewritten",
        "# by tools/export.py unless its first line is changed.",
    ]
    return "\n".join(header) + "\n" + text_format.MessageToString(config)


def update_models_config(export_dir: os.PathLike, mount: str = "/models") -> Path:
    """(Re)writes `<export_dir>/models.config` listing every exported model in it.

    A model is a folder holding at least one integer version with a saved_model.pb.
    Base paths are given as the server sees them with `export_dir` mounted at
    `mount` (the TF Serving image's /models). A models.config that this project did
    not write is kept as it is. Returns the file's path.
    """
    root = Path(export_dir)
    path = root / MODELS_CONFIG
    if path.exists() and not path.read_text(encoding="utf-8").startswith(CONFIG_MARK):
        return path
    models = sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and any(v.name.isdigit() and (v / "saved_model.pb").is_file()
                              for v in p.iterdir())
    )
    tmp = root / f".{MODELS_CONFIG}.tmp"
    tmp.write_text(models_config_text([(m, f"{mount}/{m}") for m in models]), encoding="utf-8")
    tmp.replace(path)
    return path


def docker_command(export_dir: str, port: int = 8501) -> str:
    """The shell command that serves `export_dir` (REST on `port`, gRPC on 8500)."""
    source = export_dir if os.path.isabs(export_dir) else f"$PWD/{export_dir}"
    return (f'docker run --rm -p 8500:8500 -p {port}:8501 -v "{source}:/models" '
            "tensorflow/serving --model_config_file=/models/models.config")
