"""The aggregator registry: every video model's pooling by name, usable per modality."""

import keras
import numpy as np
import pytest

from tests.tiny_models import TINY_AGGREGATOR_PARAMS
from videotag.errors import ConfigError
from videotag.models.aggregators import AGGREGATORS, build_aggregator


def test_every_video_model_registers_its_pooling():
    for name in ("ATTENTION_CLUSTER", "ATTENTION_LSTM", "DBOF", "LSTM", "NETFV", "NETRVLAD",
                 "NETVLAD", "NEXTVLAD", "SOFTDBOF", "TRN"):
        assert name in AGGREGATORS.names()
    missing = sorted(set(AGGREGATORS.names()) - set(TINY_AGGREGATOR_PARAMS))
    assert not missing, f"add small params for {missing} to tests/tiny_models.py"


def test_bad_names_and_keys_list_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        build_aggregator({"type": "NETVLADZ"}, None, None, path="model.aggregators.rgb")
    assert "config key 'model.aggregators.rgb.type' names an unknown aggregator 'NETVLADZ'" in str(
        info.value)
    for name in AGGREGATORS.names():
        assert name in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown config key 'agg.clusters' \(valid keys of "
                                          r"aggregator NETVLAD: cluster_size, input_bn\)"):
        AGGREGATORS.read({"type": "netvlad", "clusters": 3}, "agg")
    with pytest.raises(ConfigError, match="config key 'x.pooling' is 'median'; valid: max, "
                                          "average"):
        _model("DBOF", {"pooling": "median"}, 0)


@pytest.mark.parametrize("kind, params, message", [
    ("ATTENTION_CLUSTER", {"num_clusters": 0}, "'x.num_clusters' must be positive"),
    ("ATTENTION_LSTM", {"lstm_size": 0}, "'x.lstm_size' must be positive"),
    ("DBOF", {"sample_frames": -1}, "'x.sample_frames' must not be negative"),
    ("DBOF", {"cluster_size": 0}, "'x.cluster_size' must be positive"),
    ("LSTM", {"num_layers": 0}, "'x.num_layers' must be positive"),
    ("NETFV", {"cluster_size": -2}, "'x.cluster_size' must be positive"),
    ("NEXTVLAD", {"groups": 0}, "'x.groups' must be positive"),
    ("TRN", {"segments": 1}, "'x.segments' must be at least 2, got 1"),
    ("TRN", {"bottleneck": 0}, "'x.bottleneck' must be positive"),
])
def test_each_aggregator_checks_its_parameters_naming_the_key(kind, params, message):
    with pytest.raises(ConfigError, match=message):
        AGGREGATORS.read({"type": kind, **params}, "x")


def test_defaults_fill_the_parameters_not_given():
    softdbof = AGGREGATORS.read({"type": "softdbof", "max_pool": True}, "x")
    assert softdbof.type == "SOFTDBOF"
    assert (softdbof.params.cluster_size, softdbof.params.input_bn,
            softdbof.params.max_pool) == (4096, True, True)
    assert AGGREGATORS.read(None, "x").type == "NEXTVLAD"  # the registry's default
    assert AGGREGATORS.read("trn", "x").params.segments == 8


def _model(kind, params, index):
    x = keras.Input((None, 8), name="x")
    mask = keras.Input((None,), dtype="bool", name="mask")
    out = build_aggregator({"type": kind, **params}, x, mask, name="feat", index=index, path="x")
    return keras.Model([x, mask], out)


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("kind", sorted(TINY_AGGREGATOR_PARAMS))
def test_aggregator_pools_a_modality_and_ignores_padding(kind, index):
    keras.utils.set_random_seed(0)
    model = _model(kind, TINY_AGGREGATOR_PARAMS[kind], index)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 8)).astype("float32")
    lengths = np.array([6, 2, 4])
    mask = np.arange(6)[None] < lengths[:, None]
    padded = np.concatenate([x, rng.normal(0, 9, (3, 4, 8)).astype("float32")], axis=1)
    padded[1, 2:6] = 5.0
    a = keras.ops.convert_to_numpy(model([x, mask], training=False))
    b = keras.ops.convert_to_numpy(model([padded, np.arange(10)[None] < lengths[:, None]],
                                         training=False))
    assert a.ndim == 2 and a.shape[0] == 3 and np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind, first, later", [
    ("NETVLAD", 4 * 8, 2 * 8),        # K and K/2 clusters of 8 dims
    ("NETFV", 2 * 4 * 8, 2 * 2 * 8),  # first and second order
    ("SOFTDBOF", 2 * 16, 2 * 2),      # K and K/8, sum and max
    ("DBOF", 16, 2),
])
def test_later_modalities_use_fewer_clusters(kind, first, later):
    params = TINY_AGGREGATOR_PARAMS[kind]
    assert _model(kind, params, 0).output.shape[-1] == first
    assert _model(kind, params, 1).output.shape[-1] == later
