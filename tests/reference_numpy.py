"""NumPy building blocks of the reference implementations, and the harness of the
tests/test_reference_*.py files.

Each test file writes its reference model in NumPy from the reference code (the
variable names are the reference's), maps the Keras model's weights onto those
variables, and checks:
- the outputs: the NumPy reference, fed each video's valid frames alone, equals the
  Keras model fed a padded batch (garbage in the padding) in inference mode;
- the parameter count: a formula written from the reference code, per variable,
  equals the sizes of the mapped variables (small config) and the Keras model's
  count (small config, and the paper config built without allocating its weights),
  up to the difference the model's YAML states.

The functions here follow TensorFlow 1 / TF-slim semantics, which the TF references
use: `tf.nn.l2_normalize` divides by `sqrt(max(sum x^2, 1e-12))`, slim's batch norm
in inference is `(x - moving_mean) / sqrt(moving_variance + 0.001) * gamma + beta`.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import keras
import numpy as np

import videotag

# --- functions of the references ------------------------------------------------


def dequantize(q):
    """YT8M's `Dequantize(feat, max_quantized_value=2, min_quantized_value=-2)`:
    `q * 4/255 + 4/512 - 2`, in float64."""
    return np.asarray(q, np.float64) * (4.0 / 255.0) + (4.0 / 512.0 - 2.0)


def l2_normalize(x, axis=-1):
    """`tf.nn.l2_normalize(x, axis)`."""
    return x / np.sqrt(np.maximum(np.sum(x * x, axis=axis, keepdims=True), 1e-12))


def batch_norm(x, variables, scope, epsilon=1e-3):
    """slim's `batch_norm(..., center=True, scale=True, is_training=False)` over the
    last axis, with `variables[scope + "/gamma"]` etc."""
    mean, var = variables[f"{scope}/moving_mean"], variables[f"{scope}/moving_variance"]
    return (x - mean) / np.sqrt(var + epsilon) * variables[f"{scope}/gamma"] + \
        variables[f"{scope}/beta"]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def relu(x):
    return np.maximum(x, 0.0)


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def moe_model(x, variables, vocab_size, num_mixtures):
    """The YT8M starter code's video_level_models.py `MoeModel` (gates without bias,
    one dummy expert predicting 0): [B, D] -> [B, C]. With `gating_prob_weights` in
    `variables`, LOUPE's `MoeModel` with `--moe_prob_gating`: the probabilities
    times `sigmoid(batch_norm(p @ gating_prob_weights))` (scope `gating_prob_bn`)."""
    gates = x @ variables["gates/weights"]  # biases_initializer=None
    experts = x @ variables["experts/weights"] + variables["experts/biases"]
    gating = softmax(gates.reshape(-1, num_mixtures + 1))
    expert = sigmoid(experts.reshape(-1, num_mixtures))
    probabilities = np.sum(gating[:, :num_mixtures] * expert, axis=1).reshape(-1, vocab_size)
    if "gating_prob_weights" in variables:
        prob_gates = batch_norm(probabilities @ variables["gating_prob_weights"], variables,
                                "gating_prob_bn")
        probabilities = probabilities * sigmoid(prob_gates)
    return probabilities


def moe_variables(model) -> Dict[str, np.ndarray]:
    """The MoE head's weights under `MoeModel`'s names (the probability gate's too,
    when the head has one)."""
    head = model.get_layer("tags")
    v = {"gates/weights": as_np(head.gates.kernel), "experts/weights": as_np(head.experts.kernel),
         "experts/biases": as_np(head.experts.bias)}
    if head.prob_gating:
        v["gating_prob_weights"] = as_np(head.prob_gates.kernel)
        v.update(bn_variables(head.prob_gates_bn, "gating_prob_bn"))
    return v


def moe_count(input_size, vocab_size, num_mixtures):
    """Trainable parameters of `MoeModel` (starter code, LOUPE's without gating)."""
    return (input_size * vocab_size * (num_mixtures + 1)  # gates/weights, no bias
            + input_size * vocab_size * num_mixtures + vocab_size * num_mixtures)  # experts


def logistic_model(x, variables):
    """A logistic layer: `sigmoid(x W + b)`."""
    return sigmoid(x @ variables["logits/weights"] + variables["logits/biases"])


def middle_positions(num_frames, num_samples):
    """The positions of the frames taken in inference: the middle of each of S equal
    segments of the n valid frames (TSN's `_get_test_indices`), clipped to [0, n-1]."""
    return [min(int((j + 0.5) * num_frames / num_samples), num_frames - 1)
            for j in range(num_samples)]


# --- the harness ------------------------------------------------------------------


def randomize(model, seed=0):
    """Gives every weight of `model` random values (positive variances), so that no
    batch norm or bias is the identity and a wrong mapping shows."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 2.0, shape)
        elif "gamma" in w.path:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        w.assign(value.astype("float32"))


def weights_of(layer) -> Dict[str, np.ndarray]:
    """{the weight's path below `layer`: value} of a Keras layer, in float64."""
    prefix = layer.path + "/"
    return {w.path[len(prefix):] if w.path.startswith(prefix) else w.path:
            np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in layer.weights}


def bn_variables(layer, scope) -> Dict[str, np.ndarray]:
    """A Keras batch norm's weights under slim's names in `scope`."""
    return {f"{scope}/gamma": as_np(layer.gamma), f"{scope}/beta": as_np(layer.beta),
            f"{scope}/moving_mean": as_np(layer.moving_mean),
            f"{scope}/moving_variance": as_np(layer.moving_variance)}


def dense_variables(layer, scope, weights="weights", biases="biases") -> Dict[str, np.ndarray]:
    """A Keras dense layer's kernel (and bias) under the reference's names."""
    out = {f"{scope}/{weights}": as_np(layer.kernel)}
    if layer.use_bias:
        out[f"{scope}/{biases}"] = as_np(layer.bias)
    return out


def as_np(x):
    """A Keras variable or tensor as a float64 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def padded_batch(cfg, lengths: Sequence[int], extra=3, seed=0):
    """A batch of videos of `lengths` frames, padded to max + `extra` with random
    bytes (which must not matter): {feature: uint8 [B, T, size], num_frames}."""
    rng = np.random.default_rng(seed)
    steps = max(lengths) + extra
    batch = {n: rng.integers(0, 256, (len(lengths), steps, s), dtype=np.uint8)
             for n, s in zip(cfg.data.feature_names, cfg.data.feature_sizes)}
    batch["num_frames"] = np.asarray(lengths, np.int32)
    return batch


def videos(batch, cfg) -> List[List[np.ndarray]]:
    """Each video's valid frames, dequantized: [[rgb [n, 1024], audio [n, 128]], ...]."""
    return [[dequantize(batch[f][i, :n]) for f in cfg.data.feature_names]
            for i, n in enumerate(batch["num_frames"])]


def randomized_model(cfg):
    """The model of `cfg`, built with seed 0, every weight then random (`randomize`,
    seed 1)."""
    keras.utils.set_random_seed(0)
    model = videotag.build_model(cfg)
    randomize(model, seed=1)
    return model


def run_padded(model, cfg, lengths):
    """The model's outputs (`outputs`) on a padded batch of videos of `lengths` frames
    (`padded_batch`, seed 2), and each video's valid frames (`videos`)."""
    batch = padded_batch(cfg, lengths, seed=2)
    return outputs(model, batch), videos(batch, cfg)


def outputs(model, batch) -> Dict[str, np.ndarray]:
    """The Keras model's outputs in inference mode, float64."""
    return {k: as_np(v) for k, v in model(batch, training=False).items()}


def count(weights) -> int:
    return int(sum(np.prod(tuple(w.shape), dtype=np.int64) for w in weights))


def counts(model) -> Tuple[int, int]:
    """(trainable, non-trainable) parameters of a Keras model."""
    return count(model.trainable_weights), count(model.non_trainable_weights)


def paper_model(name, overrides=()):
    """The model of `configs/<name>.yaml` built without allocating its weights: a
    `keras.StatelessScope(initialize_variables=False)` defers them, only their shapes
    exist, and `keras.backend.clear_session()` forgets the deferred initialisations
    (the next stateless scope would otherwise allocate them)."""
    cfg = videotag.config.load(name.lower(), list(overrides))
    with keras.StatelessScope(initialize_variables=False):
        model = videotag.build_model(cfg)
    keras.backend.clear_session()
    return cfg, model


def mapped_count(variables: Dict[str, np.ndarray], moving=("moving_mean", "moving_variance")):
    """(trainable, non-trainable) sizes of the reference variables mapped from Keras."""
    non = sum(v.size for k, v in variables.items() if k.rsplit("/", 1)[-1] in moving)
    return sum(v.size for v in variables.values()) - non, non


def assert_close(actual, expected, what, atol=1e-5):
    """The Keras output equals the reference's within `atol` (the issue's 1e-5), and
    the reference's output is not flat (so that equality says something)."""
    assert np.ptp(expected) > 100 * atol, f"{what}: the reference's output is flat"
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=what)
