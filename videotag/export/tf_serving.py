"""Files TF Serving reads beside a SavedModel: the warm-up requests and models.config.

Warm-up: TF Serving replays `<version>/assets.extra/tf_serving_warmup_requests`, a
TFRecord file of `tensorflow.serving.PredictionLog` protos, when it loads a version
and before it serves it, so the first real request does not pay for graph
optimisation and kernel set-up. The tensorflow-serving-api package is not needed:
the few outer messages are encoded here by hand, following the public definitions in
`tensorflow_serving/apis/` (all fields length-delimited, wire type 2):

    prediction_log.proto  PredictionLog { PredictLog predict_log = 6; }
                          PredictLog    { PredictRequest request = 1; }
    predict.proto         PredictRequest { ModelSpec model_spec = 1;
                                           map<string, TensorProto> inputs = 2; }
    model.proto           ModelSpec     { string name = 1; string signature_name = 3; }

A protobuf map is a repeated entry message { key = 1; value = 2; }. The tensors are
TensorFlow's own `TensorProto`s (`tf.make_tensor_proto`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
# The first line of a models.config this project writes; another file is left alone.
CONFIG_MARK = "# videotag: TF Serving model config"

_LENGTH_DELIMITED = 2
PREDICTION_LOG_PREDICT_LOG = 6
PREDICT_LOG_REQUEST = 1
PREDICT_REQUEST_MODEL_SPEC = 1
PREDICT_REQUEST_INPUTS = 2
MODEL_SPEC_NAME = 1
MODEL_SPEC_SIGNATURE_NAME = 3
MAP_KEY, MAP_VALUE = 1, 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field: tag, length, bytes."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def predict_log_bytes(model_name: str, signature_name: str,
                      inputs: Dict[str, np.ndarray]) -> bytes:
    """A serialized PredictionLog holding one PredictRequest.

    Args:
        model_name: ModelSpec.name (the serving model name).
        signature_name: ModelSpec.signature_name.
        inputs: the request's tensors by input name (NumPy arrays; bytes objects
            for strings).
    """
    spec = _field(MODEL_SPEC_NAME, model_name.encode()) + _field(
        MODEL_SPEC_SIGNATURE_NAME, signature_name.encode())
    request = _field(PREDICT_REQUEST_MODEL_SPEC, spec)
    for name in sorted(inputs):  # a fixed order: the file is reproducible
        tensor = tf.make_tensor_proto(inputs[name]).SerializeToString()
        entry = _field(MAP_KEY, name.encode()) + _field(MAP_VALUE, tensor)
        request += _field(PREDICT_REQUEST_INPUTS, entry)
    return _field(PREDICTION_LOG_PREDICT_LOG, _field(PREDICT_LOG_REQUEST, request))


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


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes) -> Iterator[Tuple[int, bytes]]:
    """(field number, payload) of each length-delimited field of a message; fields of
    other wire types (none in the messages read here) are skipped."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _LENGTH_DELIMITED:
            size, pos = _read_varint(buf, pos)
            yield number, buf[pos:pos + size]
            pos += size
        elif wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def parse_predict_log(data: bytes) -> Tuple[str, str, Dict[str, np.ndarray]]:
    """(model name, signature name, inputs) of a serialized PredictionLog holding a
    PredictLog: the inverse of `predict_log_bytes`."""
    log = dict(_fields(data)).get(PREDICTION_LOG_PREDICT_LOG)
    if log is None:
        raise ValueError("not a PredictionLog with a predict_log")
    request = dict(_fields(log)).get(PREDICT_LOG_REQUEST, b"")
    name = signature = ""
    inputs = {}
    for number, payload in _fields(request):
        if number == PREDICT_REQUEST_MODEL_SPEC:
            spec = dict(_fields(payload))
            name = spec.get(MODEL_SPEC_NAME, b"").decode()
            signature = spec.get(MODEL_SPEC_SIGNATURE_NAME, b"").decode()
        elif number == PREDICT_REQUEST_INPUTS:
            entry = dict(_fields(payload))
            tensor = tensor_pb2.TensorProto.FromString(entry.get(MAP_VALUE, b""))
            inputs[entry.get(MAP_KEY, b"").decode()] = tf.make_ndarray(tensor)
    return name, signature, inputs


def read_warmup_file(path: os.PathLike) -> List[Tuple[str, str, Dict[str, np.ndarray]]]:
    """Every request of a warm-up file, as `parse_predict_log` gives them."""
    return [parse_predict_log(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]


def models_config_text(models: List[Tuple[str, str]]) -> str:
    """A TF Serving `--model_config_file` (text protobuf ModelServerConfig).

    Args:
        models: (serving name, base path as the server sees it) pairs.
    """
    lines = [
        CONFIG_MARK,
        "# tensorflow_model_server --model_config_file=/models/models.config serves every",
        "# model below, each at the highest integer version under its base_path. Rewritten",
        "# by tools/export.py unless its first line is changed.",
        "model_config_list {",
    ]
    def quoted(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    for name, base_path in models:
        lines += [
            "  config {",
            f"    name: {quoted(name)}",
            f"    base_path: {quoted(base_path)}",
            '    model_platform: "tensorflow"',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


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
