"""DBOF and LSTM against the YT8M starter code (google/youtube-8m, commit e6f6bf6):
frame_level_models.py `DbofModel` and `LstmModel`, model_utils.py
`SampleRandomFrames` / `FramePooling`, video_level_models.py `MoeModel`, and
train.py / eval.py (`tf.nn.l2_normalize` of the input).

The NumPy functions below are written from that code, with its variable names; each
video is computed alone from its valid frames. DbofModel draws its 30 frames at
random, in evaluation too; the model takes the segment middles in inference, and the
NumPy side takes the same frames (`middle_positions`).
"""

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
    middle_positions,
    moe_count,
    moe_model,
    moe_variables,
    paper_model,
    randomized_model,
    relu6,
    run_padded,
    sigmoid,
)

FEATURES = 1024 + 128  # rgb and audio, concatenated
CLASSES = 5
MIXTURES = 2
LENGTHS = [7, 3, 1, 5]
ACTIVATIONS = {"sigmoid": sigmoid, "relu6": relu6}  # DbofModel.ACT_FN_MAP


# --- DbofModel ------------------------------------------------------------------------


def dbof_model(frames, v, cfg):
    """`DbofModel.create_model` for one video, after train.py's L2 normalisation:
    (the hidden activation, the probabilities)."""
    m = cfg.model
    act_fn = ACTIVATIONS[m.activation]
    model_input = l2_normalize(np.concatenate(frames, axis=1))
    model_input = model_input[middle_positions(len(model_input), m.sample_frames)]
    reshaped_input = batch_norm(model_input, v, "input_bn")
    activation = batch_norm(reshaped_input @ v["cluster_weights"], v, "cluster_bn")
    activation = act_fn(activation).max(axis=0)  # FramePooling(..., "max")
    activation = batch_norm(activation @ v["hidden1_weights"], v, "hidden1_bn")
    activation = act_fn(activation)
    return activation, moe_model(activation[None], v, CLASSES, MIXTURES)[0]


def dbof_variables(model):
    layer = model.get_layer("frames_dbof")
    v = {"cluster_weights": as_np(layer.project.kernel),
         "hidden1_weights": as_np(model.get_layer("hidden").kernel)}
    v.update(bn_variables(model.get_layer("frames_input_bn"), "input_bn"))
    v.update(bn_variables(layer.project_bn, "cluster_bn"))
    v.update(bn_variables(model.get_layer("hidden_bn"), "hidden1_bn"))
    return {**v, **moe_variables(model)}


def dbof_count(cluster_size, hidden_size, vocab_size, num_mixtures):
    """(trainable, moving statistics) of `DbofModel` (add_batch_norm) + `MoeModel`."""
    trainable = 2 * FEATURES  # input_bn: beta, gamma
    moving = 2 * FEATURES  # input_bn: moving_mean, moving_variance
    trainable += FEATURES * cluster_size  # cluster_weights (no cluster_biases with BN)
    trainable += 2 * cluster_size  # cluster_bn
    moving += 2 * cluster_size
    trainable += cluster_size * hidden_size  # hidden1_weights (no hidden1_biases with BN)
    trainable += 2 * hidden_size  # hidden1_bn
    moving += 2 * hidden_size
    return trainable + moe_count(hidden_size, vocab_size, num_mixtures), moving


# --- LstmModel ------------------------------------------------------------------------


def basic_lstm_cell(inputs, state, kernel, bias, forget_bias=1.0):
    """TF1's `BasicLSTMCell.call`: gates i, j, f, o from one kernel over [x, h]."""
    c, h = state
    gate_inputs = np.concatenate([inputs, h]) @ kernel + bias
    i, j, f, o = np.split(gate_inputs, 4)
    new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    new_h = np.tanh(new_c) * sigmoid(o)
    return new_c, new_h


def lstm_model(frames, v, cfg):
    """`LstmModel.create_model` for one video: `dynamic_rnn` of the stacked cells over
    its valid frames, the last layer's final h: (h, the probabilities)."""
    m = cfg.model
    model_input = l2_normalize(np.concatenate(frames, axis=1))
    states = [(np.zeros(m.units), np.zeros(m.units)) for _ in range(m.num_layers)]
    for x in model_input:  # sequence_length = num_frames: the valid frames only
        for layer in range(m.num_layers):
            scope = f"rnn/multi_rnn_cell/cell_{layer}/basic_lstm_cell"
            states[layer] = basic_lstm_cell(x, states[layer], v[f"{scope}/kernel"],
                                            v[f"{scope}/bias"])
            x = states[layer][1]
    h = states[-1][1]  # state[-1].h
    return h, moe_model(h[None], v, CLASSES, MIXTURES)[0]


def _ifco_to_ijfo(x):
    """Keras's gate order (input, forget, cell, output) as BasicLSTMCell's (i, j, f, o)."""
    i, f, c, o = np.split(x, 4, axis=-1)
    return np.concatenate([i, c, f, o], axis=-1)


def lstm_variables(model, cfg):
    v = {}
    stacked = model.get_layer("frames_lstm")
    for index, lstm in enumerate(stacked.lstms):
        cell = lstm.cell
        scope = f"rnn/multi_rnn_cell/cell_{index}/basic_lstm_cell"
        kernel = np.concatenate([as_np(cell.kernel), as_np(cell.recurrent_kernel)])
        v[f"{scope}/kernel"] = _ifco_to_ijfo(kernel)
        bias = _ifco_to_ijfo(as_np(cell.bias))
        bias[2 * cell.units:3 * cell.units] -= 1.0  # the cell adds forget_bias=1.0 itself
        v[f"{scope}/bias"] = bias
    return {**v, **moe_variables(model)}


def lstm_count(units, num_layers, vocab_size, num_mixtures):
    """Trainable parameters of `LstmModel` + `MoeModel` (no batch norm)."""
    trainable, size = 0, FEATURES
    for _ in range(num_layers):
        trainable += (size + units) * 4 * units  # basic_lstm_cell/kernel
        trainable += 4 * units  # basic_lstm_cell/bias
        size = units
    return trainable + moe_count(units, vocab_size, num_mixtures), 0


# --- the tests --------------------------------------------------------------------------

MODELS = {
    "DBOF": (dbof_model, lambda model, cfg: dbof_variables(model),
             lambda m, c: dbof_count(m.cluster_size, m.hidden_size, c, MIXTURES),
             ["model.cluster_size=16", "model.hidden_size=6", "model.sample_frames=5"]),
    "LSTM": (lstm_model, lstm_variables,
             lambda m, c: lstm_count(m.units, m.num_layers, c, MIXTURES),
             ["model.units=6", "model.num_layers=2"]),
}


@pytest.mark.parametrize("name, activation",
                         [("DBOF", "sigmoid"), ("DBOF", "relu6"), ("LSTM", None)])
def test_computes_the_reference_function(name, activation):
    forward, variables, count, small = MODELS[name]
    extra = [f"model.activation={activation}"] if activation else []
    cfg = videotag.config.load(name.lower(), [f"data.num_classes={CLASSES}", *small, *extra])
    model = randomized_model(cfg)
    got, per_video = run_padded(model, cfg, LENGTHS)
    v = variables(model, cfg)
    for i, frames in enumerate(per_video):
        activation_, probabilities = forward(frames, v, cfg)
        assert_close(got["embedding"][i], activation_, f"{name} video {i}: video vector")
        assert_close(got["tags"][i], probabilities, f"{name} video {i}: probabilities")
    want = count(cfg.model, CLASSES)
    assert mapped_count(v) == want
    assert counts(model) == want


@pytest.mark.parametrize("name", sorted(MODELS))
def test_paper_parameters_are_the_references(name):
    _, _, count, _ = MODELS[name]
    cfg, model = paper_model(name)
    want = count(cfg.model, 3862)
    assert counts(model) == want


def test_paper_configurations_are_the_flag_defaults():
    dbof = videotag.config.load("dbof")
    m, t = dbof.model, dbof.train
    assert (m.cluster_size, m.hidden_size, m.sample_frames, m.sampling, m.pooling,
            m.activation, m.input_bn) == (8192, 1024, 30, "uniform", "max", "sigmoid", True)
    assert (t.batch_size, t.learning_rate, t.lr_decay, t.lr_decay_examples) == \
        (1024, 0.01, 0.95, 4_000_000)
    lstm = videotag.config.load("lstm")
    assert (lstm.model.units, lstm.model.num_layers, lstm.train.learning_rate) == (1024, 2, 1e-3)
    for cfg in (dbof, lstm):
        h = cfg.model.head
        assert (h.type, h.num_mixtures, h.l2_penalty, h.tags_loss) == ("moe", 2, 5e-9, "sum")
        assert cfg.model.input.normalization == "l2"
        assert (cfg.train.clip_gradient_norm, cfg.train.clip_gradient_per_variable) == (1.0, True)
