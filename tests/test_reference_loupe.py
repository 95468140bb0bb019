"""NETVLAD, NETRVLAD, NETFV and SOFTDBOF against the LOUPE authors' YT8M code
(antoine77340/Youtube-8M-WILLOW, commit 0d2a00c): frame_level_models.py
`NetVLADModelLF` (with `NetVLAD`, or `LightVLAD` for --lightvlad), `NetFVModelLF`
(`NetFV`, --fv_couple_weights=False), `GatedDbofModelLF` (`GatedDBoF`, `SoftDBoF`),
video_level_models.py `MoeModel`, and train.py / eval.py (`tf.nn.l2_normalize` of
the input).

The NumPy functions below are written from that code, with its variable names; the
model's output is compared video by video, in inference mode, where the reference
draws its 300 frames at random and the model takes the segment middles: the NumPy
side takes the same frames (`middle_positions`), so the rest is the reference's.
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
    dense_variables,
    l2_normalize,
    mapped_count,
    middle_positions,
    moe_count,
    moe_model,
    moe_variables,
    paper_model,
    randomized_model,
    run_padded,
    sigmoid,
    softmax,
)

SIZES = (1024, 128)  # rgb, audio: the reference slices reshaped_input[:, 0:1024] and [:, 1024:]
CLASSES = 5
MIXTURES = 2
LENGTHS = [7, 3, 1, 5]


# --- the reference, in NumPy --------------------------------------------------------


def netvlad(x, v, scope, residuals=True):
    """`NetVLAD.forward` (`LightVLAD.forward` without residuals) of one video x [S, D]."""
    activation = softmax(batch_norm(x @ v[f"{scope}/cluster_weights"], v, f"{scope}/cluster_bn"))
    vlad = (activation.T @ x).T  # transpose(matmul(activation^T, input)): [D, K]
    if residuals:
        a_sum = activation.sum(axis=0, keepdims=True)  # [1, K]
        vlad = vlad - a_sum * v[f"{scope}/cluster_weights2"][0]
    vlad = l2_normalize(vlad, axis=0)  # tf.nn.l2_normalize(vlad, 1) of [B, D, K]
    return l2_normalize(vlad.reshape(-1))  # reshape [-1, K * D]: dimension-major


def netfv(x, v, scope):
    """`NetFV.forward` (--fv_couple_weights=False) of one video x [S, D]."""
    covar_weights = np.square(v[f"{scope}/covar_weights"]) + 1e-6
    activation = softmax(batch_norm(x @ v[f"{scope}/cluster_weights"], v, f"{scope}/cluster_bn"))
    a_sum = activation.sum(axis=0, keepdims=True)
    cluster_weights2 = v[f"{scope}/cluster_weights2"][0]  # [D, K]
    a = a_sum * cluster_weights2
    fv1 = (activation.T @ x).T
    a2 = a_sum * np.square(cluster_weights2)
    b2 = fv1 * cluster_weights2
    fv2 = (activation.T @ np.square(x)).T
    fv2 = a2 + fv2 - 2 * b2
    fv2 = fv2 / np.square(covar_weights) - a_sum
    fv2 = l2_normalize(l2_normalize(fv2.reshape(-1)))  # normalised twice, as a whole
    fv1 = (fv1 - a) / covar_weights
    fv1 = l2_normalize(l2_normalize(fv1, axis=0).reshape(-1))
    return np.concatenate([fv1, fv2])


def soft_dbof(x, v, scope):
    """`SoftDBoF.forward` (max_pool False) of one video x [S, D]."""
    activation = softmax(batch_norm(x @ v[f"{scope}/cluster_weights"], v, f"{scope}/cluster_bn"))
    return l2_normalize(activation.sum(axis=0))


def gated_dbof(x, v, scope):
    """`GatedDBoF.forward` of one video x [S, D]."""
    activation = softmax(batch_norm(x @ v[f"{scope}/cluster_weights"], v, f"{scope}/cluster_bn"))
    activation_sum = activation.sum(axis=0)
    activation_max = l2_normalize(activation.max(axis=0))
    gates = activation_max @ v[f"{scope}/dim_red"] @ v[f"{scope}/cluster_weights_2"]
    gates = sigmoid(batch_norm(gates, v, f"{scope}/cluster_bn_2"))
    return l2_normalize(gates * activation_sum)


POOLINGS = {  # kind: (first modality's pooling, later modalities', their scopes)
    "NETVLAD": (netvlad, netvlad, ("video_VLAD", "audio_VLAD")),
    "NETRVLAD": (lambda x, v, s: netvlad(x, v, s, residuals=False),
                 lambda x, v, s: netvlad(x, v, s, residuals=False), ("video_VLAD", "audio_VLAD")),
    "NETFV": (netfv, netfv, ("video_FV", "audio_FV")),
    "SOFTDBOF": (gated_dbof, soft_dbof, ("video_DBOF", "audio_DBOF")),
}


def reference_model(kind, frames, v, cfg):
    """`*ModelLF.create_model` for one video ([rgb [n, 1024], audio [n, 128]]):
    (the activation given to the classifier, the probabilities)."""
    m = cfg.model
    model_input = l2_normalize(np.concatenate(frames, axis=1))  # train.py / eval.py
    reshaped_input = model_input[middle_positions(len(model_input), m.sample_frames)]
    reshaped_input = batch_norm(reshaped_input, v, "input_bn")
    first, later, scopes = POOLINGS[kind]
    pooled = [first(reshaped_input[:, :SIZES[0]], v, scopes[0]),
              later(reshaped_input[:, SIZES[0]:], v, scopes[1])]
    activation = np.concatenate(pooled) @ v["hidden1_weights"] + v["hidden1_biases"]
    if m.gating:  # gating_weights_2 and gating_bn
        gates = batch_norm(activation @ v["gating_weights_2"], v, "gating_bn")
        activation = activation * sigmoid(gates)
    probabilities = moe_model(activation[None], v, CLASSES, MIXTURES)[0]
    return activation, probabilities


# --- the Keras model's weights as the reference's variables ---------------------------


def _k_major_to_d_major(rows, k, d):
    """Reorders a hidden layer's rows from our flattening of [K, D] to the reference's
    of [D, K]: row d * K + k of theirs is row k * D + d of ours."""
    return rows.reshape(k, d, -1).transpose(1, 0, 2).reshape(k * d, -1)


def reference_variables(kind, model, cfg):
    """The reference's variables, filled from the Keras model's weights."""
    m = cfg.model
    v = {}
    names = cfg.data.feature_names
    bns = [bn_variables(model.get_layer(f"{n}_input_bn"), "input_bn") for n in names]
    for key in bns[0]:  # one batch norm over the 1152 concatenated features
        v[key] = np.concatenate([bn[key] for bn in bns])
    _, _, scopes = POOLINGS[kind]
    suffix = {"NETVLAD": "netvlad", "NETRVLAD": "netrvlad", "NETFV": "netfv",
              "SOFTDBOF": "softdbof"}[kind]
    blocks = []  # (row count, K, D, pieces) of the hidden layer's input, per modality
    for i, (name, scope) in enumerate(zip(names, scopes)):
        layer = model.get_layer(f"{name}_{suffix}")
        k, d = layer.cluster_size, SIZES[i]
        v.update(dense_variables(layer.assignment.logits, scope, weights="cluster_weights"))
        v.update(bn_variables(layer.assignment.logits_bn, f"{scope}/cluster_bn"))
        if kind in ("NETVLAD", "NETFV"):  # centres [K, D] -> cluster_weights2 [1, D, K]
            v[f"{scope}/cluster_weights2"] = as_np(layer.centers).T[None]
        if kind == "NETFV":
            v[f"{scope}/covar_weights"] = as_np(layer.scales).T
        if kind == "SOFTDBOF" and layer.gated:
            v[f"{scope}/dim_red"] = as_np(layer.reduce.kernel)
            v[f"{scope}/cluster_weights_2"] = as_np(layer.expand.kernel)
            v.update(bn_variables(layer.gate_bn, f"{scope}/cluster_bn_2"))
        pieces = 2 if kind == "NETFV" else 1
        blocks.append((k, d, pieces))
    hidden = model.get_layer("hidden")
    kernel, start, parts = as_np(hidden.kernel), 0, []
    for k, d, pieces in blocks:
        for _ in range(pieces):
            size = k * d if kind != "SOFTDBOF" else k
            rows = kernel[start:start + size]
            parts.append(_k_major_to_d_major(rows, k, d) if kind != "SOFTDBOF" else rows)
            start += size
    v["hidden1_weights"] = np.concatenate(parts)
    v["hidden1_biases"] = as_np(hidden.bias)
    if m.gating:
        gating = model.get_layer("context_gating")
        assert gating.batch_norm and not gating.gate.use_bias
        v["gating_weights_2"] = as_np(gating.gate.kernel)
        v.update(bn_variables(gating.gate_bn, "gating_bn"))
    v.update(moe_variables(model))
    return v


# --- parameter counts from the reference code ----------------------------------------


def reference_count(kind, cluster_size, hidden_size, vocab_size, num_mixtures, gating,
                    prob_gating, gated_pooling=True):
    """(trainable, moving statistics) of the reference model: every variable of
    `*ModelLF.create_model` and its pooling classes, by name."""
    trainable = 2 * sum(SIZES)  # input_bn: beta, gamma over the 1152 features
    moving = 2 * sum(SIZES)  # input_bn: moving_mean, moving_variance
    divisor = 8 if kind == "SOFTDBOF" else 2  # audio: cluster_size/8 (DBoF) or /2
    pooled = 0
    for i, feature_size in enumerate(SIZES):
        k = cluster_size if i == 0 else cluster_size // divisor
        trainable += feature_size * k  # cluster_weights
        trainable += 2 * k  # cluster_bn: beta, gamma
        moving += 2 * k  # cluster_bn: moving_mean, moving_variance
        if kind in ("NETVLAD", "NETFV"):
            trainable += feature_size * k  # cluster_weights2 (the centres)
        if kind == "NETFV":
            trainable += feature_size * k  # covar_weights
        if kind == "SOFTDBOF" and i == 0 and gated_pooling:  # GatedDBoF
            trainable += k * feature_size  # dim_red
            trainable += feature_size * k  # cluster_weights_2
            trainable += 2 * k  # cluster_bn_2: beta, gamma
            moving += 2 * k
        pooled += {"NETVLAD": feature_size * k, "NETRVLAD": feature_size * k,
                   "NETFV": 2 * feature_size * k, "SOFTDBOF": k}[kind]
    trainable += pooled * hidden_size  # hidden1_weights
    trainable += hidden_size  # hidden1_biases (--*_relu=False: no hidden1_bn)
    if gating:
        trainable += hidden_size * hidden_size  # gating_weights_2
        trainable += 2 * hidden_size  # gating_bn: beta, gamma
        moving += 2 * hidden_size
    trainable += moe_count(hidden_size, vocab_size, num_mixtures)  # MoeModel
    if prob_gating:  # --moe_prob_gating: gating_prob_weights [C, C], gating_prob_bn
        trainable += vocab_size * vocab_size + 2 * vocab_size
        moving += 2 * vocab_size
    return trainable, moving


# --- the tests --------------------------------------------------------------------------

# the published commands: which of them gate the MoE's probabilities
PROB_GATING = {"NETVLAD": True, "NETRVLAD": True, "NETFV": True, "SOFTDBOF": False}


def _small(kind):
    cfg = videotag.config.load(kind.lower(), [
        f"data.num_classes={CLASSES}", "model.cluster_size=8" if kind != "SOFTDBOF"
        else "model.cluster_size=16", "model.hidden_size=6", "model.sample_frames=5"])
    model = randomized_model(cfg)
    return cfg, model


@pytest.mark.parametrize("kind", sorted(POOLINGS))
def test_computes_the_reference_function(kind):
    cfg, model = _small(kind)
    got, per_video = run_padded(model, cfg, LENGTHS)
    v = reference_variables(kind, model, cfg)
    for i, frames in enumerate(per_video):
        activation, probabilities = reference_model(kind, frames, v, cfg)
        assert_close(got["embedding"][i], activation, f"{kind} video {i}: hidden activation")
        assert_close(got["tags"][i], probabilities, f"{kind} video {i}: probabilities")
    # the mapped variables are all of the reference's, and all of the model's
    m = cfg.model
    assert m.head.moe_prob_gating == PROB_GATING[kind] and not m.head.moe_gate_bias
    want = reference_count(kind, m.cluster_size, m.hidden_size, CLASSES, MIXTURES, m.gating,
                           PROB_GATING[kind], getattr(m, "gated_pooling", False))
    assert mapped_count(v) == want
    assert counts(model) == want


@pytest.mark.parametrize("kind", sorted(POOLINGS))
def test_paper_parameters_are_the_references(kind):
    cfg, model = paper_model(kind)
    m = cfg.model
    assert (m.head.num_mixtures, cfg.data.num_classes, tuple(cfg.data.feature_sizes)) == \
        (MIXTURES, 3862, SIZES)
    want = reference_count(kind, m.cluster_size, m.hidden_size, 3862, MIXTURES, m.gating,
                           PROB_GATING[kind], getattr(m, "gated_pooling", False))
    assert counts(model) == want


def test_paper_configurations_are_the_published_commands():
    expected = {  # kind: (clusters, hidden, context gating, sampled frames)
        "NETVLAD": (256, 1024, True, 300), "NETRVLAD": (256, 1024, True, 300),
        "NETFV": (128, 1024, True, 300), "SOFTDBOF": (4096, 1024, False, 300)}
    for kind, (k, hidden, gating, frames) in expected.items():
        cfg = videotag.config.load(kind.lower())
        m, t = cfg.model, cfg.train
        assert (m.cluster_size, m.hidden_size, m.gating, m.sample_frames) == \
            (k, hidden, gating, frames), kind
        assert m.input.normalization == "l2" and m.gating_batch_norm and m.sampling == "uniform"
        assert m.head.l2_penalty == 5e-7 and m.head.tags_loss == "sum"  # slim 1e-6, summed
        assert (t.batch_size, t.learning_rate, t.clip_gradient_norm,
                t.clip_gradient_per_variable) == (80, 2e-4, 1.0, True)
        assert m.batch_norm_momentum == 0.999
    assert videotag.config.load("softdbof").model.gated_pooling


def test_batch_norm_momentum_reaches_every_batch_norm():
    from videotag.training.distribution import nested_layers

    for name, momentum in (("netfv", 0.999), ("netfv_demo", 0.99)):
        cfg = videotag.config.load(name, [f"data.num_classes={CLASSES}", "model.cluster_size=4",
                                          "model.hidden_size=6", "model.gating_batch_norm=true"])
        model = videotag.build_model(cfg)
        norms = [layer for layer in nested_layers(model)
                 if isinstance(layer, keras.layers.BatchNormalization)]
        # the input batch norms, the assignments' (inside NetFV), the gating's and,
        # where the MoE gates its probabilities, the head's
        assert len(norms) == (6 if cfg.model.head.moe_prob_gating else 5)
        assert {layer.momentum for layer in norms} == {momentum}
