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
from typing import Dict, Iterable, List, Tuple

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from videotag import files

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


def write_warmup_file(path: str, model_name: str,
                      requests: Iterable[Tuple[str, Dict[str, np.ndarray]]]) -> int:
    """Writes (signature name, inputs) requests as a TF Serving warm-up file.

    Returns the number of requests written (TF Serving reads at most 1000).
    """
    count = 0
    with files.output_errors(str(path), "warm-up file"), \
            tf.io.TFRecordWriter(str(path)) as writer:
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


def update_models_config(export_dir: str, mount: str = "/models") -> str:
    """(Re)writes `<export_dir>/models.config` listing every exported model in it.

    A model is a folder holding at least one integer version with a saved_model.pb.
    Base paths are given as the server sees them with `export_dir` mounted at
    `mount` (the TF Serving image's /models). A models.config that this project did
    not write is kept as it is. `export_dir` may be on any file system of TensorFlow;
    the file is swapped in whole (`videotag.files`). Returns the file's path.
    """
    root = str(export_dir)
    path = files.join(root, MODELS_CONFIG)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path, "rb") as f:
            if not f.read().decode("utf-8", "replace").startswith(CONFIG_MARK):
                return path
    gfile = tf.io.gfile
    models = sorted(
        name.rstrip("/") for name in gfile.listdir(root)
        if gfile.isdir(files.join(root, name)) and any(
            v.rstrip("/").isdigit() and gfile.exists(files.join(files.join(
                files.join(root, name), v.rstrip("/")), "saved_model.pb"))
            for v in gfile.listdir(files.join(root, name)))
    )
    files.write_text(path, models_config_text([(m, f"{mount}/{m}") for m in models]),
                     what="TF Serving config")
    return path


def docker_command(export_dir: str, port: int = 8501) -> str:
    """The shell command that serves `export_dir` (REST on `port`, gRPC on 8500)."""
    source = export_dir if os.path.isabs(export_dir) else f"$PWD/{export_dir}"
    return (f'docker run --rm -p 8500:8500 -p {port}:8501 -v "{source}:/models" '
            "tensorflow/serving --model_config_file=/models/models.config")
