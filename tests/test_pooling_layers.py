"""Behaviour of the pooling layers and models: padding never counts, order counts only
where it should, attention weights are distributions, TRN samples at random only in
training, and NetVLAD/NetFV/attention clusters match their formulas in numpy."""

import keras
import numpy as np
import pytest

import videotag
from tests.tiny_models import FRAME_ZOO, tiny_batch, tiny_model_config
from videotag.layers import (
    AttentionClusters,
    AttentionPooling,
    BiLSTM,
    DBoF,
    NetFV,
    NetRVLAD,
    NetVLAD,
    SoftDBoF,
    StackedLSTM,
    TemporalRelation,
)
from videotag.layers.sampling import sample_positions


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _frames(batch=3, steps=8, size=6, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, size)).astype("float32")


def _mask(lengths, steps):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _pad_with_garbage(x, extra=5, seed=1):
    """x [B, T, D] -> [B, T + extra, D] with large random values in the new frames."""
    garbage = np.random.default_rng(seed).normal(0, 50, (x.shape[0], extra, x.shape[2]))
    return np.concatenate([x, garbage.astype(x.dtype)], axis=1)


def _from_same_state(fn, count, variables):
    """[fn(0), ..., fn(count - 1)], each called from the same state of `variables`
    (seed generators, moving statistics): random draws and batch-norm updates match."""
    saved = [_np(v).copy() for v in variables]
    out = []
    for i in range(count):
        for v, value in zip(variables, saved):
            v.assign(value)
        out.append(fn(i))
    return out


# --- padding: every model of the zoo ------------------------------------------


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("name", FRAME_ZOO)
def test_padding_never_changes_a_model(name, training):
    cfg = tiny_model_config(name)
    keras.utils.set_random_seed(2)
    model = videotag.build_model(cfg)
    lengths = [6, 3, 1, 4]
    batch = tiny_batch(cfg, lengths, frames=6, seed=3)
    padded = dict(batch)
    rng = np.random.default_rng(4)
    for feature in cfg.data.feature_names:
        x = batch[feature].copy()
        for i, n in enumerate(lengths):  # garbage in the padded slots of short videos
            x[i, n:] = rng.integers(0, 256, x[i, n:].shape, dtype=np.uint8)
        extra = rng.integers(0, 256, (4, 9, x.shape[-1]), dtype=np.uint8)
        padded[feature] = np.concatenate([x, extra], axis=1)  # and longer padding

    def run(i):
        return model([batch, padded][i], training=training)

    a, b = _from_same_state(run, 2, model.non_trainable_variables)
    for key in ("tags", "embedding"):
        np.testing.assert_allclose(_np(a[key]), _np(b[key]), rtol=1e-4, atol=1e-5)


def test_batch_norm_statistics_ignore_padding():
    x = _frames(size=4)
    mask = _mask([8, 2, 5], 8)
    noisy = x.copy()
    noisy[~mask] = 1e3  # would dominate the statistics if padding counted
    layer = NetVLAD(cluster_size=3)
    layer(x, mask=mask)
    variables = layer.non_trainable_variables
    initial = [_np(v).copy() for v in variables]

    def run(i):
        out = _np(layer([x, noisy][i], mask=mask, training=True))
        return out, [_np(v).copy() for v in variables]

    (a, stats_a), (b, stats_b) = _from_same_state(run, 2, variables)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for before, sa, sb in zip(initial, stats_a, stats_b):
        assert np.abs(sa - before).max() > 1e-4  # the statistics did move ...
        np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-6)  # ... the same way


# --- frame order ---------------------------------------------------------------

ORDER_FREE = {
    "NetVLAD": lambda: NetVLAD(cluster_size=3),
    "NetRVLAD": lambda: NetRVLAD(cluster_size=3),
    "NetFV": lambda: NetFV(cluster_size=3),
    "SoftDBoF": lambda: SoftDBoF(cluster_size=5, max_pool=True),
    "DBoF-max": lambda: DBoF(cluster_size=5, pooling="max"),
    "DBoF-average": lambda: DBoF(cluster_size=5, pooling="average"),
    "AttentionClusters": lambda: AttentionClusters(num_clusters=3),
    "AttentionPooling": lambda: AttentionPooling(),
}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("kind", sorted(ORDER_FREE))
def test_pooling_ignores_frame_order_and_padding(kind, training):
    layer = ORDER_FREE[kind]()
    x = _frames()
    lengths = [8, 5, 2]
    mask = _mask(lengths, 8)
    shuffled = x.copy()
    rng = np.random.default_rng(7)
    for i, n in enumerate(lengths):
        shuffled[i, :n] = x[i, rng.permutation(n)]
    layer(x, mask=mask)  # build
    padded = _pad_with_garbage(x)
    cases = [(x, mask), (shuffled, mask), (padded, _mask(lengths, padded.shape[1]))]
    a, b, c = _from_same_state(
        lambda i: _np(layer(cases[i][0], mask=cases[i][1], training=training)), 3,
        layer.non_trainable_variables)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)
    other = _np(layer(_frames(seed=5), mask=mask))
    assert np.abs(other - a).max() > 1e-4  # the content does matter


def _swap_first_frames(x):
    y = x.copy()
    y[:, [0, 1]] = x[:, [1, 0]]
    return y


@pytest.mark.parametrize("kind", ["TRN", "LSTM", "BiLSTM"])
def test_frame_order_matters_for_sequence_models(kind):
    x = _frames(batch=2, steps=6)
    mask = _mask([6, 4], 6)
    layer = {"TRN": lambda: TemporalRelation(segments=4, frame_size=5, bottleneck=6,
                                             hidden_size=7, seed=0),
             "LSTM": lambda: StackedLSTM(units=5, num_layers=2),
             "BiLSTM": lambda: BiLSTM(units=5)}[kind]()
    a = _np(layer(x, mask=mask))
    b = _np(layer(_swap_first_frames(x), mask=mask))
    # [4, 3, ...] -> TRN samples every frame of a 4-frame video: swapping two changes it
    assert np.abs(a - b).max() > 1e-4
    if kind != "TRN":
        padded = _pad_with_garbage(x)
        c = _np(layer(padded, mask=_mask([6, 4], padded.shape[1])))
        if c.ndim == 3:  # per-frame outputs: the valid frames must be unchanged
            c, a = c[:, :6] * _mask([6, 4], 6)[..., None], a * _mask([6, 4], 6)[..., None]
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_bilstm_outputs_are_zero_on_padding():
    out = _np(BiLSTM(units=3)(_frames(batch=2, steps=5), mask=_mask([5, 2], 5)))
    assert out.shape == (2, 5, 6)
    assert np.all(out[1, 2:] == 0) and np.abs(out[1, :2]).min() > 0


# --- attention weights ---------------------------------------------------------


@pytest.mark.parametrize("layer", [AttentionPooling(), AttentionClusters(num_clusters=4)],
                         ids=["pooling", "clusters"])
def test_attention_weights_are_distributions_over_valid_frames(layer):
    x = _frames(batch=4, steps=7)
    lengths = [7, 4, 1, 0]
    mask = _mask(lengths, 7)
    layer(x, mask=mask)
    weights = _np(layer.attention_weights(x, mask))
    if weights.ndim == 2:
        weights = weights[..., None]
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(weights[i, :n].sum(0), 1.0 if n else 0.0, atol=1e-6)
        assert np.all(weights[i, n:] == 0)
        assert np.all(weights[i, :n] > 0)
    out = _np(layer(x, mask=mask))
    assert np.all(np.isfinite(out))


def test_attention_clusters_shifting_formula():
    rng = np.random.default_rng(0)
    layer = AttentionClusters(num_clusters=3)
    x = _frames(batch=2, steps=5, size=4)
    mask = _mask([5, 3], 5)
    layer(x, mask=mask)
    layer.alpha.assign(rng.normal(size=3))
    layer.beta.assign(rng.normal(size=3))
    got = _np(layer(x, mask=mask)).reshape(2, 3, 4)
    w, b = _np(layer.score.kernel), _np(layer.score.bias)
    for i, n in enumerate([5, 3]):
        scores = x[i, :n] @ w + b  # [n, C]
        a = np.exp(scores - scores.max(0)) / np.exp(scores - scores.max(0)).sum(0)
        for c in range(3):
            v = _np(layer.alpha)[c] * (a[:, c] @ x[i, :n]) + _np(layer.beta)[c]
            np.testing.assert_allclose(got[i, c], v / np.linalg.norm(v) / np.sqrt(3),
                                       rtol=1e-4, atol=1e-6)
    # the concatenation has unit norm: C units of norm 1/sqrt(C)
    np.testing.assert_allclose(np.linalg.norm(got.reshape(2, -1), axis=1), 1.0, rtol=1e-5)


# --- sampling and TRN randomness ----------------------------------------------


def test_sample_positions_by_hand():
    mask = _mask([10, 3, 1], 12)
    got = _np(sample_positions(mask, 5, training=False))
    # segment middles: floor((i + 0.5) * n / 5)
    assert got.tolist() == [[1, 3, 5, 7, 9], [0, 0, 1, 2, 2], [0, 0, 0, 0, 0]]
    gen = keras.random.SeedGenerator(0)
    for _ in range(5):
        drawn = _np(sample_positions(mask, 5, training=True, seed_generator=gen))
        # one frame inside each segment [floor(i n / 5), floor((i + 1) n / 5)], in order
        assert drawn[0].tolist() == sorted(drawn[0].tolist())
        assert all(2 * i <= p < 2 * i + 2 for i, p in enumerate(drawn[0]))
        assert drawn[1].max() <= 2 and drawn[2].max() == 0


def test_trn_is_deterministic_in_inference_and_random_in_training():
    layer = TemporalRelation(segments=5, subsample=2, frame_size=6, bottleneck=8,
                             hidden_size=4, seed=1)
    x = _frames(batch=2, steps=40, size=5)
    mask = _mask([40, 33], 40)
    a, b = _np(layer(x, mask=mask)), _np(layer(x, mask=mask))
    np.testing.assert_array_equal(a, b)
    c, d = _np(layer(x, mask=mask, training=True)), _np(layer(x, mask=mask, training=True))
    assert np.abs(c - d).max() > 1e-5 and np.abs(c - a).max() > 1e-5


def test_trn_uses_every_scale_with_the_configured_tuples():
    layer = TemporalRelation(segments=4, subsample=3, frame_size=0, bottleneck=2, hidden_size=2)
    assert layer.scales == [4, 3, 2]
    assert layer.counts == {4: 1, 3: 3, 2: 3}
    assert layer.tuples[3].tolist() == [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]
    layer(_frames(batch=1, steps=4, size=3))
    assert [g.kernel.shape[0] for g in layer.g] == [12, 9, 6]


# --- formulas ------------------------------------------------------------------


def _soft_assign(layer, x, mask):
    """Inference-mode soft assignments with the layer's weights, in numpy."""
    w = _np(layer.assignment.logits.kernel)
    bn = layer.assignment.logits_bn
    a = x @ w
    a = (a - _np(bn.moving_mean)) / np.sqrt(_np(bn.moving_variance) + bn.epsilon)
    a = a * _np(bn.gamma) + _np(bn.beta)
    a = np.exp(a - a.max(-1, keepdims=True))
    return a / a.sum(-1, keepdims=True) * mask[..., None]


def _randomise_bn(bn, rng):
    bn.moving_mean.assign(rng.normal(size=bn.moving_mean.shape))
    bn.moving_variance.assign(rng.uniform(0.5, 2, size=bn.moving_variance.shape))
    bn.gamma.assign(rng.uniform(0.5, 1.5, size=bn.gamma.shape))
    bn.beta.assign(rng.normal(0, 0.3, size=bn.beta.shape))


def _unit(v, axis=-1):
    return v / np.maximum(np.linalg.norm(v, axis=axis, keepdims=True), 1e-6)


def test_netvlad_matches_the_formula():
    rng = np.random.default_rng(0)
    x = _frames(batch=3, steps=5, size=4)
    mask = _mask([5, 2, 1], 5)
    layer = NetVLAD(cluster_size=3)
    layer(x, mask=mask)
    _randomise_bn(layer.assignment.logits_bn, rng)
    got = _np(layer(x, mask=mask, training=False))
    a = _soft_assign(layer, x, mask)  # [B, T, K]
    c = _np(layer.centers)  # [K, D]
    want = np.zeros((3, 3, 4))
    for i in range(3):
        for k in range(3):
            for t in range(5):  # sum over frames of a_tk (x_t - c_k)
                want[i, k] += a[i, t, k] * (x[i, t] - c[k])
    want = _unit(_unit(want).reshape(3, -1))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # NetRVLAD: the same without centres
    rlayer = NetRVLAD(cluster_size=3)
    rlayer(x, mask=mask)
    rlayer.assignment.set_weights(layer.assignment.get_weights())
    plain = np.einsum("btk,btd->bkd", a, x)
    np.testing.assert_allclose(_np(rlayer(x, mask=mask)), _unit(_unit(plain).reshape(3, -1)),
                               rtol=1e-4, atol=1e-5)


def test_netfv_matches_the_formula():
    rng = np.random.default_rng(1)
    x = _frames(batch=2, steps=4, size=3)
    mask = _mask([4, 2], 4)
    layer = NetFV(cluster_size=2)
    layer(x, mask=mask)
    _randomise_bn(layer.assignment.logits_bn, rng)
    got = _np(layer(x, mask=mask))
    a = _soft_assign(layer, x, mask)
    mu, s = _np(layer.centers), _np(layer.scales) ** 2 + 1e-6
    z = (x[:, :, None, :] - mu[None, None]) / s[None, None]  # [B, T, K, D]
    fv1 = np.einsum("btk,btkd->bkd", a, z)
    fv2 = np.einsum("btk,btkd->bkd", a, z**2 - 1)
    # LOUPE: the first order intra-normalised (per cluster) then as a whole, the second
    # order as a whole only
    want = np.concatenate([_unit(_unit(fv1).reshape(2, -1)), _unit(fv2.reshape(2, -1))], -1)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    # videotag 0.1 intra-normalised the second order too: its files load with it
    old = NetFV.from_config({k: v for k, v in layer.get_config().items()
                             if k != "intra_normalize_second"})
    old(x, mask=mask)
    old.set_weights(layer.get_weights())
    want = np.concatenate([_unit(_unit(f).reshape(2, -1)) for f in (fv1, fv2)], axis=-1)
    np.testing.assert_allclose(_np(old(x, mask=mask)), want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("activation", ["sigmoid", "relu6"])
def test_dbof_pools_its_units_by_hand(activation):
    x = _frames(batch=2, steps=4, size=3)
    mask = _mask([4, 2], 4)
    for pooling in ("max", "average"):
        layer = DBoF(cluster_size=4, pooling=pooling, activation=activation)
        got = _np(layer(x, mask=mask))
        bn = layer.project_bn
        h = (x @ _np(layer.project.kernel) - _np(bn.moving_mean)) / np.sqrt(
            _np(bn.moving_variance) + bn.epsilon) * _np(bn.gamma) + _np(bn.beta)
        h = np.clip(h, 0, 6) if activation == "relu6" else 1 / (1 + np.exp(-h))
        want = [getattr(h[i, :n], "max" if pooling == "max" else "mean")(0)
                for i, n in enumerate([4, 2])]
        np.testing.assert_allclose(got, np.stack(want), rtol=1e-5, atol=1e-6)
