"""TF Serving's API messages, built from descriptors for the tests.

tensorflow-serving-api is not installed here, so the messages the tests decode
(PredictionLog, the warm-up file's records) and parse (ModelServerConfig, the
models.config text) are declared field by field from the public definitions in
tensorflow_serving/apis/{model,predict,prediction_log}.proto and
tensorflow_serving/config/model_server_config.proto (only the fields used here; the
version policy, FileSystemStoragePathSourceConfig.ServableVersionPolicy in
file_system_storage_path_source.proto, is declared at the top level: text format goes
by field names), on top of TensorFlow's own TensorProto. This is an independent reading of those files: the
exporter's hand-written encoder is checked against it.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorflow.core.framework import tensor_pb2

_F = descriptor_pb2.FieldDescriptorProto
STRING, MESSAGE, INT64, UINT32 = _F.TYPE_STRING, _F.TYPE_MESSAGE, _F.TYPE_INT64, _F.TYPE_UINT32
OPTIONAL, REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _message(file, name, fields, nested=(), oneofs=()):
    msg = file.message_type.add(name=name) if isinstance(file, descriptor_pb2.FileDescriptorProto) \
        else file.nested_type.add(name=name)
    for oneof in oneofs:
        msg.oneof_decl.add(name=oneof)
    for spec in nested:
        spec(msg)
    for field in fields:
        name_, number, type_, label = field[:4]
        extra = field[4] if len(field) > 4 else {}
        f = msg.field.add(name=name_, number=number, type=type_, label=label)
        if "type_name" in extra:
            f.type_name = extra["type_name"]
        if "oneof" in extra:
            f.oneof_index = extra["oneof"]
    return msg


def _add_with_dependencies(pool, file_descriptor, done):
    if file_descriptor.name in done:
        return
    for dep in file_descriptor.dependencies:
        _add_with_dependencies(pool, dep, done)
    proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(proto)
    pool.Add(proto)
    done.add(file_descriptor.name)


def _build_pool():
    pool = descriptor_pool.DescriptorPool()
    _add_with_dependencies(pool, tensor_pb2.DESCRIPTOR, set())

    model = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/apis/model.proto", package="tensorflow.serving", syntax="proto3")
    _message(model, "ModelSpec", [("name", 1, STRING, OPTIONAL),
                                  ("signature_name", 3, STRING, OPTIONAL)])
    pool.Add(model)

    predict = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/apis/predict.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["tensorflow/core/framework/tensor.proto",
                                     "tensorflow_serving/apis/model.proto"])

    def inputs_entry(msg):
        entry = _message(msg, "InputsEntry", [
            ("key", 1, STRING, OPTIONAL),
            ("value", 2, MESSAGE, OPTIONAL, {"type_name": ".tensorflow.TensorProto"})])
        entry.options.map_entry = True

    _message(predict, "PredictRequest", [
        ("model_spec", 1, MESSAGE, OPTIONAL, {"type_name": ".tensorflow.serving.ModelSpec"}),
        ("inputs", 2, MESSAGE, REPEATED,
         {"type_name": ".tensorflow.serving.PredictRequest.InputsEntry"}),
        ("output_filter", 3, STRING, REPEATED)], nested=[inputs_entry])
    pool.Add(predict)

    log = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/apis/prediction_log.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["tensorflow_serving/apis/predict.proto"])
    _message(log, "PredictLog", [
        ("request", 1, MESSAGE, OPTIONAL, {"type_name": ".tensorflow.serving.PredictRequest"})])
    _message(log, "PredictionLog", [
        ("predict_log", 6, MESSAGE, OPTIONAL,
         {"type_name": ".tensorflow.serving.PredictLog", "oneof": 0})], oneofs=["log_type"])
    pool.Add(log)

    config = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/model_server_config.proto",
        package="tensorflow.serving", syntax="proto3")

    def policy_nested(msg):
        _message(msg, "Latest", [("num_versions", 1, UINT32, OPTIONAL)])
        _message(msg, "All", [])
        _message(msg, "Specific", [("versions", 1, INT64, REPEATED)])

    policy = ".tensorflow.serving.ServableVersionPolicy"
    _message(config, "ServableVersionPolicy", [
        ("latest", 100, MESSAGE, OPTIONAL, {"type_name": policy + ".Latest", "oneof": 0}),
        ("all", 101, MESSAGE, OPTIONAL, {"type_name": policy + ".All", "oneof": 0}),
        ("specific", 102, MESSAGE, OPTIONAL, {"type_name": policy + ".Specific", "oneof": 0}),
    ], nested=[policy_nested], oneofs=["policy_choice"])
    _message(config, "ModelConfig", [
        ("name", 1, STRING, OPTIONAL), ("base_path", 2, STRING, OPTIONAL),
        ("model_platform", 4, STRING, OPTIONAL),
        ("model_version_policy", 7, MESSAGE, OPTIONAL, {"type_name": policy})])
    _message(config, "ModelConfigList", [
        ("config", 1, MESSAGE, REPEATED, {"type_name": ".tensorflow.serving.ModelConfig"})])
    _message(config, "ModelServerConfig", [
        ("model_config_list", 1, MESSAGE, OPTIONAL,
         {"type_name": ".tensorflow.serving.ModelConfigList", "oneof": 0})], oneofs=["config"])
    pool.Add(config)
    return pool


_POOL = _build_pool()


def message_class(full_name: str):
    """The message class of e.g. "tensorflow.serving.PredictionLog"."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))
