"""Classifier heads: the HMC head of seed 000 against a NumPy reading of it."""

import keras
import numpy as np
import pytest

import videotag
from tests.helpers import random_batch, tiny_config
from videotag.errors import ConfigError
from videotag.layers import HmcHead


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
