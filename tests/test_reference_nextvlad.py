"""NEXTVLAD against the NeXtVLAD authors' code (linrongc/youtube-8m, commit 4810b4e):
nextvlad.py `NeXtVLADModel` and `NeXtVLAD`, video_level_models.py `LogisticModel`,
and train.py / eval.py (the rgb rescaling by YT8M's PCA eigenvalues).

The NumPy functions below are written from that code, with its variable names (slim
names its two dense layers in a scope `fully_connected` and `fully_connected_1`);
each video is computed alone from its valid frames (the reference pads to 300
frames and masks the padding's attention, which in inference is the same).
"""

import keras
import numpy as np
import pytest

import videotag
from tests.reference_numpy import (
    as_np,
    assert_close,
    batch_norm,
    bn_variables,
    counts,
    l2_normalize,
    mapped_count,
    paper_model,
    randomized_model,
    relu,
    run_padded,
    sigmoid,
    softmax,
)
from videotag.errors import ConfigError

SIZES = (1024, 128)  # NeXtVLAD(1024, ...) for model_input[:, :, 0:1024], NeXtVLAD(128, ...)
CLASSES = 5
LENGTHS = [7, 3, 1, 5]


# --- the reference, in NumPy --------------------------------------------------------


def nextvlad(x, v, scope, cluster_size, groups, expansion):
    """`NeXtVLAD.forward` of one video's frames x [n, N] (no padding, mask all ones)."""
    frames, feature_size = x.shape[0], expansion * x.shape[1] // groups
    input = x @ v[f"{scope}/fully_connected/weights"] + v[f"{scope}/fully_connected/biases"]
    attention = sigmoid(input @ v[f"{scope}/fully_connected_1/weights"]
                        + v[f"{scope}/fully_connected_1/biases"])
    attention = attention.reshape(frames * groups, 1)
    activation = input @ v[f"{scope}/cluster_weights"]
    activation = batch_norm(activation, v, f"{scope}/cluster_bn")
    activation = softmax(activation.reshape(frames * groups, cluster_size)) * attention
    a_sum = activation.sum(axis=0, keepdims=True)
    a = a_sum * v[f"{scope}/cluster_weights2"][0]  # [feature_size, K]
    reshaped_input = input.reshape(frames * groups, feature_size)
    vlad = (activation.T @ reshaped_input).T - a  # [feature_size, K]
    vlad = l2_normalize(vlad, axis=0)  # tf.nn.l2_normalize(vlad, 1)
    vlad = vlad.reshape(-1)  # [-1, cluster_size * feature_size]
    return batch_norm(vlad, v, f"{scope}/vlad_bn")


def reference_model(frames, v, cfg, eigenvalues):
    """`NeXtVLADModel.create_model` + `LogisticModel` for one video, after train.py's
    input rescaling: (the activation given to the classifier, the probabilities)."""
    m = cfg.model
    model_input_raw = np.concatenate(frames, axis=1)
    offset = np.array([4. / 512] * SIZES[0] + [0] * SIZES[1])
    eigen_val = np.sqrt(eigenvalues[:SIZES[0], 0])
    model_input = (model_input_raw - offset) * np.pad(eigen_val + 1e-4, [[0, SIZES[1]]],
                                                      constant_values=1.)
    vlad_video = nextvlad(model_input[:, :SIZES[0]], v, "video_VLAD", m.cluster_size, m.groups,
                          m.expansion)
    vlad_audio = nextvlad(model_input[:, SIZES[0]:], v, "audio_VLAD", m.cluster_size // 2,
                          m.groups // 2, m.expansion)
    vlad = np.concatenate([vlad_video, vlad_audio])  # slim.dropout: identity in inference
    activation = batch_norm(vlad @ v["hidden1_weights"], v, "hidden1_bn")
    gates = relu(batch_norm(activation @ v["gating_weights_1"], v, "gating_bn"))
    gates = sigmoid(gates @ v["gating_weights_2"])
    activation = activation * gates
    logits = activation @ v["logits/weights"] + v["logits/biases"]
    return activation, sigmoid(logits)


# --- the Keras model's weights as the reference's variables ---------------------------


def _d_major(x, k, d):
    """Our flattening of [K, d] (cluster-major) reordered as the reference's of
    [d, K]: entry j * K + c of theirs is c * d + j of ours (along axis 0)."""
    return x.reshape(k, d, *x.shape[1:]).swapaxes(0, 1).reshape(k * d, *x.shape[1:])


def reference_variables(model, cfg):
    """The reference's variables, filled from the Keras model's weights."""
    v, parts = {}, []
    hidden = as_np(model.get_layer("hidden").kernel)
    start = 0
    for name, scope in zip(cfg.data.feature_names, ("video_VLAD", "audio_VLAD")):
        layer = model.get_layer(f"nextvlad_{name}")
        k, d = layer.cluster_size, layer.group_size
        v[f"{scope}/fully_connected/weights"] = as_np(layer.expand.kernel)
        v[f"{scope}/fully_connected/biases"] = as_np(layer.expand.bias)
        v[f"{scope}/fully_connected_1/weights"] = as_np(layer.attention.kernel)
        v[f"{scope}/fully_connected_1/biases"] = as_np(layer.attention.bias)
        v[f"{scope}/cluster_weights"] = as_np(layer.assign.kernel)
        v.update(bn_variables(layer.assign_bn, f"{scope}/cluster_bn"))
        v[f"{scope}/cluster_weights2"] = as_np(layer.centers)[None]  # [1, d, K]
        bn = bn_variables(model.get_layer(f"vlad_bn_{name}"), f"{scope}/vlad_bn")
        v.update({key: _d_major(value, k, d) for key, value in bn.items()})
        parts.append(_d_major(hidden[start:start + k * d], k, d))
        start += k * d
    v["hidden1_weights"] = np.concatenate(parts)
    v.update(bn_variables(model.get_layer("hidden_bn"), "hidden1_bn"))
    gating = model.get_layer("context_gating")
    assert not gating.excite.use_bias  # gating_weights_2 has no bias
    v["gating_weights_1"] = as_np(gating.squeeze.kernel)
    v.update(bn_variables(gating.squeeze_bn, "gating_bn"))
    v["gating_weights_2"] = as_np(gating.excite.kernel)
    head = model.get_layer("tags").dense
    v["logits/weights"], v["logits/biases"] = as_np(head.kernel), as_np(head.bias)
    return v


# --- parameter counts from the reference code ----------------------------------------


def reference_count(cluster_size, groups, expansion, hidden_size, gating_reduction,
                    vocab_size):
    """(trainable, moving statistics) of `NeXtVLADModel` + `LogisticModel`, variable
    by variable."""
    trainable = moving = vlad_dim = 0
    for size, k, g in ((SIZES[0], cluster_size, groups),
                       (SIZES[1], cluster_size // 2, groups // 2)):  # video, audio
        expanded = expansion * size
        feature_size = expanded // g
        trainable += size * expanded + expanded  # fully_connected: weights, biases
        trainable += expanded * g + g  # fully_connected_1 (attention): weights, biases
        trainable += expanded * g * k  # cluster_weights
        trainable += 2 * g * k  # cluster_bn: beta, gamma
        moving += 2 * g * k  # cluster_bn: moving_mean, moving_variance
        trainable += feature_size * k  # cluster_weights2
        trainable += 2 * feature_size * k  # vlad_bn
        moving += 2 * feature_size * k
        vlad_dim += feature_size * k
    squeezed = hidden_size // gating_reduction
    trainable += vlad_dim * hidden_size  # hidden1_weights
    trainable += 2 * hidden_size  # hidden1_bn
    moving += 2 * hidden_size
    trainable += hidden_size * squeezed  # gating_weights_1
    trainable += 2 * squeezed  # gating_bn
    moving += 2 * squeezed
    trainable += squeezed * hidden_size  # gating_weights_2 (no bias)
    trainable += hidden_size * vocab_size + vocab_size  # LogisticModel: weights, biases
    return trainable, moving


# --- the tests --------------------------------------------------------------------------


def _eigenvalues(tmp_path):
    """An eigenvals.npy shaped as YT8M's ([2048, 1], descending)."""
    values = np.sort(np.random.default_rng(5).uniform(0.01, 2.0, (2048, 1)), axis=0)[::-1]
    path = tmp_path / "eigenvals.npy"
    np.save(path, values.astype(np.float32))
    return path, np.load(path).astype(np.float64)


def test_computes_the_reference_function(tmp_path):
    path, eigenvalues = _eigenvalues(tmp_path)
    cfg = videotag.config.load("nextvlad", [
        f"data.num_classes={CLASSES}", "model.cluster_size=8", "model.groups=4",
        "model.hidden_size=16", "model.gating_reduction=4", f"model.input.eigenvalues_file={path}"])
    model = randomized_model(cfg)
    got, per_video = run_padded(model, cfg, LENGTHS)
    v = reference_variables(model, cfg)
    for i, frames in enumerate(per_video):
        activation, probabilities = reference_model(frames, v, cfg, eigenvalues)
        assert_close(got["embedding"][i], activation, f"video {i}: gated activation")
        assert_close(got["tags"][i], probabilities, f"video {i}: probabilities")
    m = cfg.model
    want = reference_count(m.cluster_size, m.groups, m.expansion, m.hidden_size,
                           m.gating_reduction, CLASSES)
    assert mapped_count(v) == want
    assert counts(model) == want  # the eigenvalues are a constant, as in the reference


def test_paper_parameters_are_the_references():
    # the eigenvalues are constants, not weights: the count does not need the file
    cfg, model = paper_model("NEXTVLAD", ["model.input.normalization=none"])
    m = cfg.model
    assert counts(model) == reference_count(m.cluster_size, m.groups, m.expansion,
                                            m.hidden_size, m.gating_reduction, 3862)


def test_paper_configuration_is_the_published_script():
    cfg = videotag.config.load("nextvlad")
    m, t = cfg.model, cfg.train
    assert (m.cluster_size, m.groups, m.expansion, m.hidden_size, m.gating_reduction,
            m.dropout) == (128, 8, 2, 2048, 8, 0.5)
    # slim l2_regularizer(1e-5) on weights and bias is 5e-6 * sum(w ** 2) in Keras's terms
    assert (m.head.type, m.head.l2_penalty, m.head.l2_bias, m.head.tags_loss) == \
        ("logistic", 5e-6, True, "sum")
    assert (t.batch_size, t.learning_rate, t.lr_decay, t.lr_decay_examples) == \
        (160, 2e-4, 0.8, 2_000_000)
    assert (t.clip_gradient_norm, t.clip_gradient_per_variable) == (1.0, True)
    assert m.input.normalization == "eigenvalues" and m.batch_norm_momentum == 0.999


def test_eigenvalue_rescaling_needs_its_file(tmp_path):
    with pytest.raises(ConfigError, match="model.input.eigenvalues_file"):
        videotag.build_model(videotag.config.load("nextvlad"))
    short = tmp_path / "short.npy"
    np.save(short, np.ones(10))
    with pytest.raises(ConfigError, match="at least 1024"):
        videotag.build_model(videotag.config.load(
            "nextvlad", [f"model.input.eigenvalues_file={short}"]))


def test_head_l2_regularises_weights_and_bias():
    cfg = videotag.config.load("nextvlad", [
        "data.num_classes=3", "model.cluster_size=4", "model.groups=2", "model.hidden_size=8",
        "model.input.normalization=none"])
    head = videotag.build_model(cfg).get_layer("tags").dense
    w, b = as_np(head.kernel), as_np(head.bias)
    head.bias.assign(np.full(b.shape, 0.5, "float32"))
    penalty = sum(float(keras.ops.convert_to_numpy(r(x))) for r, x in
                  ((head.kernel_regularizer, head.kernel), (head.bias_regularizer, head.bias)))
    np.testing.assert_allclose(penalty, 5e-6 * (np.sum(w ** 2) + 3 * 0.25), rtol=1e-5)
