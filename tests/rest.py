"""TF Serving's REST predict API (row format), applied to a loaded signature.

No TF Serving binary runs on the test machines (no docker engine), so the README's
REST example is checked against these rules of the REST API: a request
`{"signature_name", "instances": [{input: value, ...}, ...]}` batches the instances
along the first dimension, binary strings come as `{"b64": "..."}`; the answer is
`{"predictions": [{output: value, ...}, ...]}`, one object per instance, with string
outputs as UTF-8 text (base64 objects only for names ending in `_bytes`).
"""

import base64

import numpy as np
import tensorflow as tf


def _decode(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _encode(name, value):
    if isinstance(value, np.ndarray):
        return [_encode(name, v) for v in value]
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode()}
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def rest_predict(loaded, request: dict) -> dict:
    """The JSON answer TF Serving gives to `request` for the SavedModel `loaded`."""
    signature = loaded.signatures[request.get("signature_name", "serving_default")]
    instances = request["instances"]
    names = list(instances[0])
    specs = signature.structured_input_signature[1]
    inputs = {n: tf.constant([_decode(i[n]) for i in instances], dtype=specs[n].dtype)
              for n in names}
    outputs = {k: v.numpy() for k, v in signature(**inputs).items()}
    return {"predictions": [{k: _encode(k, v[i]) for k, v in outputs.items()}
                            for i in range(len(instances))]}
