"""ATTENTION_LSTM and ATTENTION_CLUSTER against PaddlePaddle's YT8M implementations:
- PaddlePaddle/PaddleVideo (commit ed245e9) paddlevideo/modeling/heads/
  attention_lstm_head.py `AttentionLstmHead.forward` (with `paddle.nn.LSTM`,
  bidirectional, and `paddle.nn.Linear`, whose weight is [in, out]);
- PaddlePaddle/models PaddleCV/video/models/attention_cluster: attention_cluster.py
  `AttentionCluster.build_model` and shifting_attention.py `ShiftingAttentionModel`
  (a 1x1 convolution scores the frames; weight [n_att, F, 1, 1]), its reader
  feature_reader.py `generate_random_idx` (one random frame per segment).

The NumPy functions below are written from that code, with its parameter names; each
video is computed alone from its valid frames.
"""

import keras
import numpy as np
import pytest

import videotag
from tests.reference_numpy import (
    as_np,
    assert_close,
    counts,
    l2_normalize,
    mapped_count,
    middle_positions,
    paper_model,
    randomized_model,
    run_padded,
    sigmoid,
    softmax,
)

SIZES = (1024, 128)  # feature_dims [1024, 128]
CLASSES = 5
LENGTHS = [7, 3, 1, 5]


# --- AttentionLstmHead ------------------------------------------------------------------


def paddle_lstm_direction(x, p, suffix, hidden):
    """One direction of `paddle.nn.LSTM` over x [n, in] (the gates of `LSTMCell`:
    chunks i, f, g, o of W_ih x + b_ih + W_hh h + b_hh): the outputs [n, hidden]."""
    h, c, out = np.zeros(hidden), np.zeros(hidden), []
    for x_t in x:
        gates = (p[f"weight_ih_l0{suffix}"] @ x_t + p[f"bias_ih_l0{suffix}"]
                 + p[f"weight_hh_l0{suffix}"] @ h + p[f"bias_hh_l0{suffix}"])
        i, f, g, o = np.split(gates, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def attention_lstm_head(frames, p, cfg):
    """`AttentionLstmHead.forward` for one video (sequence_length = its frames; the
    reverse direction runs from the last valid frame): (fc_out2_act, output)."""
    m = cfg.model
    att_outs = []
    for i, x in enumerate(frames):
        output_fc = np.tanh(x @ p[f"fc_feature{i}.weight"] + p[f"fc_feature{i}.bias"])
        lstm = {k[len(f"bi_lstm{i}."):]: val for k, val in p.items()
                if k.startswith(f"bi_lstm{i}.")}
        forward = paddle_lstm_direction(output_fc, lstm, "", m.lstm_size)
        backward = paddle_lstm_direction(output_fc[::-1], lstm, "_reverse", m.lstm_size)[::-1]
        lstm_out = np.concatenate([forward, backward], axis=1)  # dropout: inference
        lstm_weight = lstm_out @ p[f"att_fc{i}.weight"] + p[f"att_fc{i}.bias"]  # [n, 1]
        lstm_exp = np.exp(lstm_weight)  # every frame valid: lstm_mask is 1
        lstm_softmax = lstm_exp / lstm_exp.sum()
        att_outs.append(np.sum(lstm_out * lstm_softmax, axis=0))
    att_out = np.concatenate(att_outs)
    fc_out1_act = np.maximum(att_out @ p["fc_out1.weight"] + p["fc_out1.bias"], 0.0)
    fc_out2_act = np.tanh(fc_out1_act @ p["fc_out2.weight"] + p["fc_out2.bias"])
    fc_logit = fc_out2_act @ p["fc_logit.weight"] + p["fc_logit.bias"]
    return fc_out2_act, sigmoid(fc_logit)


def attention_lstm_parameters(model, cfg):
    """The reference's parameters from the Keras weights. Paddle's LSTM has two
    biases per direction where Keras's has one: b_ih takes it, b_hh is 0 (only
    their sum enters the cell)."""
    p = {}
    for i, name in enumerate(cfg.data.feature_names):
        embed = model.get_layer(f"{name}_embed")
        p[f"fc_feature{i}.weight"], p[f"fc_feature{i}.bias"] = as_np(embed.kernel), as_np(embed.bias)
        bidirectional = model.get_layer(f"{name}_bilstm").lstm
        for suffix, lstm in (("", bidirectional.forward_layer),
                             ("_reverse", bidirectional.backward_layer)):
            cell = lstm.cell
            p[f"bi_lstm{i}.weight_ih_l0{suffix}"] = as_np(cell.kernel).T
            p[f"bi_lstm{i}.weight_hh_l0{suffix}"] = as_np(cell.recurrent_kernel).T
            p[f"bi_lstm{i}.bias_ih_l0{suffix}"] = as_np(cell.bias)
            p[f"bi_lstm{i}.bias_hh_l0{suffix}"] = np.zeros(4 * cell.units)
        score = model.get_layer(f"{name}_attention").score
        p[f"att_fc{i}.weight"], p[f"att_fc{i}.bias"] = as_np(score.kernel), as_np(score.bias)
    for index, key in enumerate(("fc_out1", "fc_out2")):
        dense = model.get_layer(f"fc_{index}")
        p[f"{key}.weight"], p[f"{key}.bias"] = as_np(dense.kernel), as_np(dense.bias)
    head = model.get_layer("tags").dense
    p["fc_logit.weight"], p["fc_logit.bias"] = as_np(head.kernel), as_np(head.bias)
    return p


def attention_lstm_count(embedding_size, lstm_size, fc_sizes, vocab_size):
    """Parameters of `AttentionLstmHead`, sublayer by sublayer."""
    total = 0
    for feature_dim in SIZES:
        total += feature_dim * embedding_size + embedding_size  # fc_feature{i}
        for _ in range(2):  # bi_lstm{i}: forward and reverse
            total += 4 * lstm_size * embedding_size  # weight_ih_l0
            total += 4 * lstm_size * lstm_size  # weight_hh_l0
            total += 2 * 4 * lstm_size  # bias_ih_l0, bias_hh_l0
        total += 2 * lstm_size + 1  # att_fc{i}
    size = 2 * lstm_size * len(SIZES)
    for units in fc_sizes:  # fc_out1 (8192), fc_out2 (4096)
        total += size * units + units
        size = units
    return total + size * vocab_size + vocab_size, 0  # fc_logit


def lstm_bias_difference(lstm_size):
    """Keras's LSTM has one bias per direction where Paddle's has two: per modality
    and direction 4 * lstm_size fewer (the YAML's stated difference)."""
    return -len(SIZES) * 2 * 4 * lstm_size


# --- AttentionCluster ---------------------------------------------------------------------


def shifting_attention(x, p, name, n_att):
    """`ShiftingAttentionModel.forward` for one video's sampled frames x [L, F]."""
    weight = p[f"{name}.conv.weight"][:, :, 0, 0]  # [n_att, F]
    scores = x @ weight.T + p[f"{name}.conv.bias"]  # the 1x1 conv over [N, F, L, 1]
    weights = softmax(scores.T, axis=-1)  # softmax_m1: over the seg_num frames, [n_att, L]
    outs = []
    for i in range(n_att):
        shift = np.sum(x * weights[i][:, None], axis=0) * p[f"{name}.shift_w"][i] \
            + p[f"{name}.shift_b"][i]
        outs.append(l2_normalize(shift) / np.sqrt(n_att))
    return np.concatenate(outs)


def attention_cluster(frames, p, cfg):
    """`AttentionCluster.build_model` + `LogisticModel` for one video, on the frames
    the reader takes (the segment middles): (fc2, the probabilities)."""
    m = cfg.model
    positions = middle_positions(len(frames[0]), m.sample_frames)
    att_outs = [shifting_attention(x[positions], p, f"satt{i}", m.num_clusters)
                for i, x in enumerate(frames)]
    out = np.concatenate(att_outs)  # dropout: inference
    fc1 = np.tanh(out @ p["fc1.weights"] + p["fc1.bias"])
    fc2 = np.tanh(fc1 @ p["fc2.weights"] + p["fc2.bias"])
    return fc2, sigmoid(fc2 @ p["logit.weights"] + p["logit.bias"])


def attention_cluster_parameters(model, cfg):
    p = {}
    for i, name in enumerate(cfg.data.feature_names):
        layer = model.get_layer(f"{name}_clusters")
        p[f"satt{i}.conv.weight"] = as_np(layer.score.kernel).T[:, :, None, None]
        p[f"satt{i}.conv.bias"] = as_np(layer.score.bias)
        p[f"satt{i}.shift_w"], p[f"satt{i}.shift_b"] = as_np(layer.alpha), as_np(layer.beta)
    for index, key in enumerate(("fc1", "fc2")):
        dense = model.get_layer(f"fc_{index}")
        p[f"{key}.weights"], p[f"{key}.bias"] = as_np(dense.kernel), as_np(dense.bias)
    head = model.get_layer("tags").dense
    p["logit.weights"], p["logit.bias"] = as_np(head.kernel), as_np(head.bias)
    return p


def attention_cluster_count(cluster_nums, fc_sizes, vocab_size):
    """Parameters of `AttentionCluster`, parameter by parameter."""
    total, size = 0, 0
    for feature_dim, n_att in zip(SIZES, cluster_nums):
        total += n_att * feature_dim + n_att  # satt{i}.conv.weight, .conv.bias
        total += 2 * n_att  # satt{i}.shift_w, .shift_b
        size += n_att * feature_dim
    for units in fc_sizes:  # fc1 (1024), fc2 (4096): weights, bias
        total += size * units + units
        size = units
    return total + size * vocab_size + vocab_size, 0  # LogisticModel


# --- the tests --------------------------------------------------------------------------

MODELS = {
    "ATTENTION_LSTM": (attention_lstm_head, attention_lstm_parameters,
                       lambda m, c: attention_lstm_count(m.embedding_size, m.lstm_size,
                                                         m.fc_sizes, c),
                       lambda m: lstm_bias_difference(m.lstm_size),
                       ["model.embedding_size=6", "model.lstm_size=5", "model.fc_sizes=[12, 8]"]),
    "ATTENTION_CLUSTER": (attention_cluster, attention_cluster_parameters,
                          lambda m, c: attention_cluster_count([m.num_clusters] * 2, m.fc_sizes, c),
                          lambda m: 0,
                          ["model.num_clusters=3", "model.fc_sizes=[12, 8]",
                           "model.sample_frames=5"]),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_computes_the_reference_function(name):
    forward, parameters, count, difference, small = MODELS[name]
    cfg = videotag.config.load(name.lower(), [f"data.num_classes={CLASSES}", *small])
    model = randomized_model(cfg)
    got, per_video = run_padded(model, cfg, LENGTHS)
    p = parameters(model, cfg)
    for i, frames in enumerate(per_video):
        vector, probabilities = forward(frames, p, cfg)
        assert_close(got["embedding"][i], vector, f"{name} video {i}: last dense layer")
        assert_close(got["tags"][i], probabilities, f"{name} video {i}: probabilities")
    want = count(cfg.model, CLASSES)
    assert mapped_count(p) == want
    assert counts(model) == (want[0] + difference(cfg.model), 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_paper_parameters_are_the_references(name):
    _, _, count, difference, _ = MODELS[name]
    cfg, model = paper_model(name)
    want = count(cfg.model, 3862)
    assert counts(model) == (want[0] + difference(cfg.model), 0)
    if name == "ATTENTION_LSTM":
        assert difference(cfg.model) == -16_384  # the figure the YAML states


def test_paper_configurations_are_the_published_ones():
    lstm = videotag.config.load("attention_lstm")
    m = lstm.model
    assert (m.embedding_size, m.lstm_size, m.dropout, m.fc_sizes, lstm.train.batch_size) == \
        (512, 1024, 0.5, [8192, 4096], 128)
    cluster = videotag.config.load("attention_cluster")
    m, t = cluster.model, cluster.train
    assert (m.sample_frames, m.num_clusters, m.dropout, m.fc_sizes) == (100, 32, 0.5, [1024, 4096])
    assert (t.batch_size, t.learning_rate, t.lr_decay_examples, t.epochs) == (2048, 1e-3, 0, 5)
    for cfg in (lstm, cluster):
        assert cfg.model.input.normalization == "none"  # dequantized features as they are
        assert cfg.model.head.tags_loss == "sum" and cfg.model.head.l2_penalty == 0.0


# --- the training recipe --------------------------------------------------------------


def test_the_attention_lstm_recipe_makes_the_references_updates():
    """Two steps of the trainer with configs/attention_lstm.yaml's train section (at
    epochs 0 and 5 of the piecewise rate) against paddle.optimizer.RMSProp (centered,
    epsilon 1e-6 under the root) on the gradient of PaddleVideo's loss, the binary
    cross-entropy summed over classes and the 128 videos, plus L2Decay(4e-4)'s 4e-4 w
    (on the variables train.weight_decay decays: the biases are the stated deviation)."""
    from tests.helpers import random_batch
    from videotag.training.losses import decayed_variables
    from videotag.training.schedules import set_epoch
    from videotag.training.step import TrainStep, make_optimizer

    import tensorflow as tf

    cfg = videotag.config.load("attention_lstm", [
        f"data.num_classes={CLASSES}", "data.max_frames=6", "model.embedding_size=8",
        "model.lstm_size=8", "model.fc_sizes=[16]", "model.dropout=0.0"])
    t, rms = cfg.train, cfg.train.optimizer.params
    keras.utils.set_random_seed(0)
    model = videotag.build_model(cfg)
    optimizer = make_optimizer(cfg)
    optimizer.build(model.trainable_variables)
    step = TrainStep(cfg, model, optimizer, tf.distribute.get_strategy())
    decayed = {v.path for v in decayed_variables(model)}
    rng = np.random.default_rng(3)
    weights = {v.path: v.numpy().astype(np.float64) for v in model.trainable_variables}
    mean_square = {k: np.zeros_like(w) for k, w in weights.items()}
    mean_grad = {k: np.zeros_like(w) for k, w in weights.items()}
    unscaled = {}  # the same update with Paddle's epsilon unscaled: must differ
    for epoch, seed in ((0, 1), (5, 2)):
        inputs = {k: tf.constant(v) for k, v in
                  random_batch(cfg, batch=t.batch_size, frames=6, seed=seed).items()}
        labels = (rng.random((t.batch_size, CLASSES)) < 0.3).astype(np.float32)
        with tf.GradientTape() as tape:  # PaddleVideo's loss: reduction 'sum'
            probs = tf.cast(model(inputs, training=True)["tags"], tf.float32)
            summed = tf.reduce_sum(keras.losses.binary_crossentropy(labels[..., None],
                                                                    probs[..., None]))
        grads = tape.gradient(summed, model.trainable_variables)
        lr = t.lr_values[0] if epoch < 5 else t.lr_values[1]
        for v, g in zip(model.trainable_variables, grads):
            g = np.asarray(g, np.float64) + (4e-4 * weights[v.path] if v.path in decayed else 0)
            mean_square[v.path] = 0.95 * mean_square[v.path] + 0.05 * g ** 2
            mean_grad[v.path] = 0.95 * mean_grad[v.path] + 0.05 * g
            variance = mean_square[v.path] - mean_grad[v.path] ** 2
            if epoch == 0:
                unscaled[v.path] = weights[v.path] - lr * (g / 128) / np.sqrt(
                    variance / 128 ** 2 + 1e-6)
            weights[v.path] = weights[v.path] - lr * g / np.sqrt(variance + 1e-6)
        set_epoch(optimizer.lr_schedule, epoch)
        step((inputs, {"tags": tf.constant(labels)}))
        if epoch == 0:
            assert not all(np.allclose(v.numpy(), unscaled[v.path], rtol=1e-3, atol=1e-7)
                           for v in model.trainable_variables)
        for v in model.trainable_variables:
            np.testing.assert_allclose(v.numpy(), weights[v.path], rtol=1e-3, atol=1e-7,
                                       err_msg=f"{v.path} after epoch {epoch}'s step")
    assert (rms.rho, rms.centered, rms.momentum) == (0.95, True, 0.0)
