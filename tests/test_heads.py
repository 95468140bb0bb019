"""Classifier heads: the HMC head of seed 000 against a NumPy reading of it."""

import keras
import numpy as np
import pytest

import videotag
from tests.helpers import random_batch, tiny_config
from videotag.errors import ConfigError
from videotag.layers import HmcHead, LogisticHead, MoeHead


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _dense(layer, x, relu=False):
    y = x @ keras.ops.convert_to_numpy(layer.kernel) + keras.ops.convert_to_numpy(layer.bias)
    return np.maximum(y, 0.0) if relu else y


@pytest.mark.parametrize("local_levels, weight", [([3], 0.5), ([1, 2, 3], 0.5), ([2], 0.8)])
def test_hmc_is_the_weighted_average_of_global_and_local_branches(local_levels, weight):
    head = HmcHead(7, hidden_size=6, local_levels=local_levels, local_weight=weight)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    out = keras.ops.convert_to_numpy(head(x))
    assert out.shape == (5, 7) and np.all((out >= 0) & (out <= 1))

    # the structure worked by hand: dense-connected global levels (6, 6, 3 units)
    a1 = _dense(head.levels[0], x, relu=True)
    a2 = _dense(head.levels[1], np.concatenate([a1, x], -1), relu=True)
    a3 = _dense(head.levels[2], np.concatenate([a2, a1, x], -1), relu=True)
    assert a3.shape == (5, 3)
    global_p = _sigmoid(_dense(head.global_logits, np.concatenate([a3, a2, a1, x], -1)))
    hidden = {1: a1, 2: a2, 3: a3}
    local_p = [_sigmoid(_dense(logits, _dense(dense, hidden[level], relu=True)))
               for level, dense, logits in zip(local_levels, head.local_hidden, head.local_logits)]
    want = weight * np.mean(local_p, axis=0) + (1 - weight) * global_p
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)

    g, locals_ = head.branches(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(g), global_p, rtol=1e-5, atol=1e-6)
    assert len(locals_) == len(local_levels)
    if local_levels == [3] and weight == 0.5:  # the seed's: the plain average
        np.testing.assert_allclose(
            out, (keras.ops.convert_to_numpy(g) + keras.ops.convert_to_numpy(locals_[0])) / 2,
            rtol=1e-5, atol=1e-6)


def test_hmc_head_in_a_model_trains_and_round_trips(tmp_path):
    cfg = tiny_config(**{"model.head.type": "hmc", "model.head.hmc_hidden_size": 16,
                         "model.head.hmc_local_levels": "[2, 3]"})
    model = videotag.build_model(cfg)
    assert isinstance(model.get_layer("tags"), HmcHead)
    batch = random_batch(cfg, batch=4, frames=5)
    out = keras.ops.convert_to_numpy(model(batch)["tags"])
    assert out.shape == (4, cfg.data.num_classes) and np.all((out >= 0) & (out <= 1))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(batch)["tags"]), out, rtol=1e-6)

    from videotag.training.trainer import compile_model

    cfg.train.learning_rate = 0.01
    compile_model(model, cfg)
    targets = np.zeros((4, cfg.data.num_classes), np.float32)
    targets[np.arange(4), [1, 2, 3, 1]] = 1
    losses = [model.train_on_batch(batch, {"tags": targets}) for _ in range(15)]
    assert losses[-1] < losses[0]


def test_hmc_config_is_checked():
    with pytest.raises(ConfigError, match="model.head.hmc_local_levels"):
        tiny_config(**{"model.head.type": "hmc", "model.head.hmc_local_levels": "[4]"})
    with pytest.raises(ConfigError, match="model.head.hmc_local_weight"):
        tiny_config(**{"model.head.type": "hmc", "model.head.hmc_local_weight": 1.5})


# --- the mixture of experts: the starter code's MoeModel, LOUPE's probability gating ---

def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def starter_moe(x, gate_kernel, expert_kernel, expert_bias, vocab_size, num_mixtures):
    """google/youtube-8m video_level_models.py `MoeModel.create_model`, in NumPy."""
    gate_activations = x @ gate_kernel  # biases_initializer=None: no bias
    expert_activations = x @ expert_kernel + expert_bias
    gating_distribution = _softmax(gate_activations.reshape(-1, num_mixtures + 1))
    expert_distribution = _sigmoid(expert_activations.reshape(-1, num_mixtures))
    final = np.sum(gating_distribution[:, :num_mixtures] * expert_distribution, 1)
    return final.reshape(-1, vocab_size)


def test_moe_head_is_the_starter_codes_moe_model():
    rng = np.random.default_rng(2)
    head = MoeHead(num_classes=7, num_mixtures=3, l2_penalty=1e-3)
    x = rng.normal(size=(5, 6)).astype("float32")
    got = _np(head(x))
    assert head.gates.bias is None and head.experts.bias is not None
    assert head.count_params() == 6 * 7 * 4 + 6 * 7 * 3 + 7 * 3
    want = starter_moe(x, _np(head.gates.kernel), _np(head.experts.kernel),
                       _np(head.experts.bias), 7, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # slim.l2_regularizer on both kernels (Keras L2: l * sum(w^2)), none on the bias
    penalty = 1e-3 * sum(np.sum(_np(w) ** 2) for w in (head.gates.kernel, head.experts.kernel))
    assert float(sum(head.losses)) == pytest.approx(penalty, rel=1e-5)


def test_moe_probability_gating_is_loupes():
    rng = np.random.default_rng(3)
    head = MoeHead(num_classes=7, num_mixtures=2, l2_penalty=0.0, prob_gating=True)
    x = rng.normal(size=(5, 6)).astype("float32")
    head(x)
    bn = head.prob_gates_bn
    bn.set_weights([rng.normal(size=7), rng.normal(size=7), rng.normal(size=7),
                    rng.uniform(0.5, 2.0, 7)])
    got = _np(head(x, training=False))
    # LOUPE video_level_models.py MoeModel with moe_prob_gating (input "prob")
    probabilities = starter_moe(x, _np(head.gates.kernel), _np(head.experts.kernel),
                                _np(head.experts.bias), 7, 2)
    gates = probabilities @ _np(head.prob_gates.kernel)  # gating_prob_weights [C, C]
    gates = (gates - _np(bn.moving_mean)) / np.sqrt(_np(bn.moving_variance) + 0.001)
    gates = gates * _np(bn.gamma) + _np(bn.beta)  # slim.batch_norm, epsilon 0.001
    np.testing.assert_allclose(got, probabilities * _sigmoid(gates), rtol=1e-5, atol=1e-6)
    assert head.count_params() == 6 * 7 * 3 + 6 * 7 * 2 + 7 * 2 + 7 * 7 + 4 * 7
    assert head.prob_gates.bias is None


def test_moe_head_config_keys_reach_the_head():
    cfg = tiny_config(**{"model.head.type": "moe", "model.head.moe_prob_gating": True})
    head = videotag.build_model(cfg).get_layer("tags")
    assert isinstance(head, MoeHead) and head.prob_gating and not head.gate_bias
    cfg = tiny_config(**{"model.head.type": "moe", "model.head.moe_gate_bias": True})
    assert videotag.build_model(cfg).get_layer("tags").gates.bias is not None


def _drop_keys(value, keys):
    if isinstance(value, dict):
        return {k: _drop_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop_keys(v, keys) for v in value]
    return value


def test_a_videotag_0_1_keras_file_loads_with_its_gate_bias(tmp_path):
    import json
    import zipfile

    inputs = keras.Input((6,))
    model = keras.Model(inputs, MoeHead(4, 2, gate_bias=True, name="tags")(inputs))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    x = rng.normal(size=(3, 6)).astype("float32")
    model.save(tmp_path / "new.keras")
    # the file as videotag 0.1 wrote it: the head's config without the new keys
    with zipfile.ZipFile(tmp_path / "new.keras") as new, \
            zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                config = _drop_keys(json.loads(data), {"gate_bias", "prob_gating"})
                assert "gate_bias" not in json.dumps(config)
                data = json.dumps(config).encode()
            old.writestr(item, data)
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    head = loaded.get_layer("tags")
    assert head.gate_bias and not head.prob_gating
    np.testing.assert_allclose(_np(head.gates.bias), _np(model.get_layer("tags").gates.bias))
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6)


def test_logistic_head_can_regularise_its_bias():
    head = LogisticHead(5, l2_penalty=0.1, l2_bias=True)
    head(np.ones((2, 3), "float32"))
    head.dense.bias.assign(np.arange(5, dtype="float32"))
    penalty = 0.1 * (np.sum(_np(head.dense.kernel) ** 2) + np.sum(np.arange(5) ** 2))
    assert float(sum(head.losses)) == pytest.approx(penalty, rel=1e-5)
    plain = LogisticHead(5, l2_penalty=0.1)
    plain(np.ones((2, 3), "float32"))
    assert len(plain.losses) == 1
