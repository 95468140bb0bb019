"""NeXtVLAD behaviour: the formula, padding, frame order and short videos."""

import keras
import numpy as np
import pytest

import videotag
from tests.helpers import random_batch, tiny_config
from videotag.layers import NeXtVLAD


def _numpy_nextvlad(layer, x, mask):
    """The paper's NeXtVLAD in plain numpy, with the layer's weights (inference BN)."""
    k, g, d = layer.cluster_size, layer.groups, layer.group_size
    w = {v.path.split("/")[-2] + "/" + v.name: v.numpy() for v in layer.weights}
    xe = x @ w["expand/kernel"] + w["expand/bias"]  # [B, T, lambda*N]
    att = 1 / (1 + np.exp(-(xe @ w["group_attention/kernel"] + w["group_attention/bias"])))
    att = att * mask[..., None]
    a = xe @ w["cluster_assign/kernel"]
    bn = {n: w[f"cluster_assign_bn/{n}"] for n in ("gamma", "beta", "moving_mean", "moving_variance")}
    a = (a - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) * bn["gamma"] + bn["beta"]
    b, t = x.shape[:2]
    a = a.reshape(b, t, g, k)
    a = np.exp(a - a.max(-1, keepdims=True))
    a = a / a.sum(-1, keepdims=True)
    weights = a * att[..., None]  # [B, T, G, K]
    groups = xe.reshape(b, t, g, d)
    centers = [v for v in layer.weights if v.name == "centers"][0].numpy()  # [d, K]
    out = np.zeros((b, k, d))
    for i in range(b):
        for c in range(k):
            # sum over frames and groups of w * (x - centre)
            out[i, c] = np.einsum("tg,tgd->d", weights[i, :, :, c], groups[i] - centers[:, c])
    out = out / np.sqrt(np.maximum((out**2).sum(-1, keepdims=True), 1e-12))
    return out.reshape(b, k * d)


def test_layer_matches_the_formula():
    rng = np.random.default_rng(0)
    layer = NeXtVLAD(cluster_size=4, groups=2, expansion=2)
    x = rng.normal(size=(3, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], bool)
    layer.build(x.shape)
    # non-trivial BN statistics so the test sees them
    bn = layer.assign_bn
    bn.moving_mean.assign(rng.normal(size=bn.moving_mean.shape))
    bn.moving_variance.assign(rng.uniform(0.5, 2, size=bn.moving_variance.shape))
    got = keras.ops.convert_to_numpy(layer(x, mask=mask, training=False))
    np.testing.assert_allclose(got, _numpy_nextvlad(layer, x, mask), rtol=1e-4, atol=1e-5)
    # intra-normalisation: every cluster's residual has unit L2 norm
    norms = np.linalg.norm(got.reshape(3, 4, -1), axis=-1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def model_and_cfg():
    cfg = tiny_config()
    return videotag.build_model(cfg), cfg


@pytest.mark.parametrize("training", [False, True])
def test_padding_never_counts(model_and_cfg, training):
    model, cfg = model_and_cfg
    batch = random_batch(cfg, batch=4, frames=6, num_frames=[6, 3, 1, 4])
    rng = np.random.default_rng(5)
    padded = {k: v.copy() for k, v in batch.items()}
    for name in cfg.data.feature_names:
        extra = rng.integers(0, 256, (4, 7, batch[name].shape[-1]), dtype=np.uint8)
        padded[name] = np.concatenate([batch[name], extra], axis=1)  # garbage padding
        # and garbage in the padded slots of the shorter videos
        padded[name][1, 3:6] = 255
        padded[name][2, 1:6] = 7
    a = model(batch, training=training)
    b = model(padded, training=training)
    for key in ("tags", "embedding"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a[key]),
                                   keras.ops.convert_to_numpy(b[key]), rtol=1e-4, atol=1e-5)


def test_frame_order_does_not_matter(model_and_cfg):
    model, cfg = model_and_cfg
    batch = random_batch(cfg, batch=3, frames=8, num_frames=[8, 5, 2])
    shuffled = {k: v.copy() for k, v in batch.items()}
    rng = np.random.default_rng(1)
    for i, n in enumerate(batch["num_frames"]):
        perm = rng.permutation(n)
        for name in cfg.data.feature_names:
            shuffled[name][i, :n] = batch[name][i, perm]
    a = keras.ops.convert_to_numpy(model(batch)["tags"])
    b = keras.ops.convert_to_numpy(model(shuffled)["tags"])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # but the content matters: other frames give other scores
    other = random_batch(cfg, batch=3, frames=8, num_frames=[8, 5, 2], seed=9)
    assert np.abs(keras.ops.convert_to_numpy(model(other)["tags"]) - a).max() > 1e-4


def test_short_video_in_a_batch_equals_the_video_alone(model_and_cfg):
    model, cfg = model_and_cfg
    batch = random_batch(cfg, batch=3, frames=10, num_frames=[10, 2, 7])
    alone = {n: batch[n][1:2, :2] for n in cfg.data.feature_names}
    alone["num_frames"] = np.array([2], np.int32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(batch)["tags"])[1],
        keras.ops.convert_to_numpy(model(alone)["tags"])[0], rtol=1e-4, atol=1e-6)


def test_outputs_and_paper_structure():
    cfg = videotag.config.load("nextvlad", ["data.num_classes=3862",
                                            "model.input.normalization=none"])
    assert (cfg.model.cluster_size, cfg.model.groups, cfg.model.expansion,
            cfg.model.hidden_size, cfg.model.gating_reduction, cfg.model.dropout) == (128, 8, 2, 2048, 8, 0.5)
    model = videotag.build_model(cfg)
    # rgb: K=128, lambda*N/G = 2*1024/8 = 256 -> 32768; audio: K=64, G=4: 2*128/4 = 64 -> 4096
    assert model.get_layer("nextvlad_rgb").output.shape[-1] == 128 * 256
    assert model.get_layer("nextvlad_audio").output.shape[-1] == 64 * 64
    out = model(random_batch(cfg, batch=2, frames=3))
    assert out["tags"].shape == (2, 3862) and out["embedding"].shape == (2, 2048)
    tags = keras.ops.convert_to_numpy(out["tags"])
    assert np.all((tags >= 0) & (tags <= 1)) and not np.isnan(tags).any()
