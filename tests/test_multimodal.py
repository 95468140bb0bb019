"""MULTIMODAL: fusions, config errors, training, .keras and SavedModel round trips."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import frame_record, write_file
from videotag.data import for_keras, make_dataset, model_inputs
from videotag.data.vocab import save_vocabulary
from videotag.errors import ConfigError
from videotag.layers import GatedFusion, TextGuidedAttention

RGB, AUDIO = 16, 8
TITLES = ["Cat video", "", "小猫 和 狗狗", "dog DOG dog!", "猫", "a cat and a dog", "zebra", "cat"]


def _config(tmp_path, **overrides):
    vocab = tmp_path / "vocab.txt"
    if not vocab.exists():
        save_vocabulary(["cat", "dog", "video", "猫", "狗"], vocab)
    base = {
        "data.num_classes": 6, "data.max_frames": 10, "data.feature_sizes": f"[{RGB}, {AUDIO}]",
        "data.length_buckets": "[]",
        "model.aggregators.rgb.cluster_size": 4, "model.aggregators.rgb.groups": 2,
        "model.aggregators.audio.cluster_size": 4, "model.aggregators.audio.groups": 2,
        "model.text.vocab_file": str(vocab), "model.text.embedding_dim": 8,
        "model.text.max_length": 8,
        "model.text.encoder": "{type: textcnn, filters: 4, windows: [2, 3]}",
        "model.fusion.hidden_size": 16, "model.fusion.dropout": 0.0,
        "train.batch_size": 8, "eval.batch_size": 8, "train.learning_rate": 0.01,
    }
    base.update(overrides)
    return videotag.config.load("multimodal_demo", [f"{k}={v}" for k, v in base.items()])


def _batch(frames=6, num_frames=(2, 6, 4), titles=("cat dog", "", "猫 video"), seed=0):
    rng = np.random.default_rng(seed)
    b = len(num_frames)
    return {"rgb": rng.integers(0, 256, (b, frames, RGB), dtype=np.uint8),
            "audio": rng.integers(0, 256, (b, frames, AUDIO), dtype=np.uint8),
            "num_frames": np.array(num_frames, np.int32),
            "title": np.array(list(titles), object)}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _records(n=16, categories=False):
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        frames = int(rng.integers(1, 8))
        out.append(frame_record(f"v{i}".encode(), (i % 6,), rgb_size=RGB, audio_size=AUDIO,
                                frames=frames, seed=i, title=TITLES[i % len(TITLES)],
                                category=(i % 3) if categories else None))
    return out


@pytest.mark.parametrize("fusion", ["concat_se", "gated", "text_guided"])
def test_fusions_shapes_and_padding_invariance(tmp_path, fusion):
    cfg = _config(tmp_path, **{"model.fusion.type": fusion})
    model = videotag.build_model(cfg)
    batch = _batch()
    out = model(batch, training=False)
    assert out["tags"].shape == (3, 6) and out["embedding"].shape == (3, 16)
    assert np.all(np.isfinite(_np(out["embedding"])))
    # more padded frames, with other contents: the same outputs
    padded = _batch(frames=9, seed=5)
    for name in ("rgb", "audio"):
        for i, n in enumerate(batch["num_frames"]):
            padded[name][i, :n] = batch[name][i, :n]
    again = model(padded, training=False)
    for key in ("tags", "embedding"):
        np.testing.assert_allclose(_np(again[key]), _np(out[key]), rtol=1e-5, atol=1e-5)
    # the title counts
    other = dict(batch, title=np.array(["dog", "cat cat", "video"], object))
    assert not np.allclose(_np(model(other, training=False)["tags"]), _np(out["tags"]))


def test_text_guided_attention_weights():
    layer = TextGuidedAttention(units=5)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(2, 6, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    text = rng.normal(size=(2, 3)).astype(np.float32)
    pooled, weights = layer(frames, text, mask, return_attention=True)
    weights = _np(weights)
    np.testing.assert_allclose(weights.sum(1), [1.0, 1.0], rtol=1e-6)
    assert np.all(weights[0, 3:] == 0) and np.all(weights[mask] > 0)
    # another title: other weights
    _, other = layer(frames, text * -3.0, mask, return_attention=True)
    assert np.abs(_np(other) - weights).max() > 1e-3
    # padded frames changed: same pooled vector and weights
    changed = frames.copy()
    changed[0, 3:] = 50.0
    pooled2, weights2 = layer(changed, text, mask, return_attention=True)
    np.testing.assert_allclose(_np(pooled2), _np(pooled), rtol=1e-6)
    np.testing.assert_allclose(_np(weights2), weights, rtol=1e-6)
    # pooled = sum_t a_t * value(x_t)
    values = frames @ _np(layer.value.kernel) + _np(layer.value.bias)
    np.testing.assert_allclose(_np(pooled), np.einsum("bt,btu->bu", weights, values),
                               rtol=1e-5, atol=1e-6)
    # no valid frame at all: zero weights, no NaN
    _, none = layer(frames, text, np.zeros_like(mask), return_attention=True)
    assert np.all(_np(none) == 0)


def test_gated_fusion_mixes_projected_modalities():
    layer = GatedFusion(hidden_size=4, gating_reduction=0, dropout=0.0)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(3, d)).astype(np.float32) for d in (5, 2, 3)]
    out, gates = layer(xs, return_gates=True)
    gates = _np(gates)
    assert gates.shape == (3, 3, 4)
    np.testing.assert_allclose(gates.sum(1), np.ones((3, 4)), rtol=1e-6)
    projected = np.stack([np.tanh(x @ _np(p.kernel) + _np(p.bias))
                          for x, p in zip(xs, layer.projections)], 1)
    np.testing.assert_allclose(_np(out), (gates * projected).sum(1), rtol=1e-5, atol=1e-6)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.use_title"):
        videotag.build_model(_config(tmp_path, **{"data.use_title": "false"}))
    with pytest.raises(ConfigError, match="'model.fusion.type' names an unknown fusion 'sum'.*"
                                          "concat_se, gated, text_guided"):
        videotag.build_model(_config(tmp_path, **{"model.fusion.type": "sum"}))
    with pytest.raises(ConfigError, match=r"unknown config key 'model.fusion.heads' \(valid keys "
                                          "of fusion concat_se: dropout, gating_reduction"):
        videotag.build_model(_config(tmp_path, **{"model.fusion.heads": 2}))
    with pytest.raises(ConfigError, match="'model.fusion.attention_units'.*valid keys of fusion "
                                          "gated: dropout, gating_reduction, hidden_size"):
        _config(tmp_path, **{"model.fusion": "{type: gated, attention_units: 8}"})
    with pytest.raises(ConfigError, match="unknown text encoder 'bert'.*bilstm, textcnn"):
        videotag.build_model(_config(tmp_path, **{"model.text.encoder": "bert"}))
    with pytest.raises(ConfigError, match="model.aggregators.rgb.*unknown aggregator 'VLADX'"):
        videotag.build_model(_config(tmp_path, **{"model.aggregators.rgb.type": "VLADX"}))
    with pytest.raises(ConfigError, match="'model.aggregators.depth' is not a frame feature"):
        videotag.build_model(_config(tmp_path, **{"model.aggregators.depth.type": "NEXTVLAD"}))
    with pytest.raises(ConfigError, match=f"vocabulary file that does not exist: {tmp_path}/no"):
        videotag.build_model(_config(tmp_path, **{"model.text.vocab_file": f"{tmp_path}/no"}))


@pytest.mark.parametrize("encoder", ["textcnn", "bilstm"])
def test_fit_and_keras_round_trip(tmp_path, encoder):
    params = "filters: 4, windows: [2, 3]" if encoder == "textcnn" else "units: 4"
    cfg = _config(tmp_path, **{"model.text.encoder": f"{{type: {encoder}, {params}}}",
                               "model.head.type": "hmc", "model.head.hmc_hidden_size": 8})
    model = videotag.build_model(cfg)
    from videotag.training.trainer import compile_model

    compile_model(model, cfg)
    path = write_file(tmp_path / "train.tfrecord", _records())
    ds = for_keras(cfg.data, make_dataset(cfg.data, path, 8, training=True, seed=0, repeat=True))
    history = model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])

    batch = _batch()
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.get_layer("title_tokens").vocabulary == ["cat", "dog", "video", "猫", "狗"]
    for key in ("tags", "embedding"):
        np.testing.assert_allclose(_np(again(batch, training=False)[key]),
                                   _np(model(batch, training=False)[key]), rtol=1e-5, atol=1e-6)


def test_pretrained_embeddings_are_loaded(tmp_path):
    vectors = tmp_path / "w2v.txt"
    vectors.write_text("2 8\ncat " + " ".join(["0.5"] * 8) + "\n狗 " + " ".join(["-1"] * 8) + "\n",
                       encoding="utf-8")
    cfg = _config(tmp_path, **{"model.text.pretrained_embeddings": str(vectors),
                               "model.text.train_embeddings": "false"})
    model = videotag.build_model(cfg)
    table = _np(model.get_layer("title_embedding").embeddings)
    np.testing.assert_array_equal(table[2], np.full(8, 0.5))   # cat: id 2
    np.testing.assert_array_equal(table[6], np.full(8, -1.0))  # 狗: id 6
    assert not model.get_layer("title_embedding").trainable


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["videotag"] = None   # no project code
    sys.modules["keras"] = None      # TensorFlow alone
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[2])]
    out = loaded.signatures["serving_default"](example_bytes=tf.constant(records))
    result = {k: out[k].numpy().tolist() for k in ("class_indexes", "predictions", "embedding")}
    result["video_id"] = [v.decode() for v in out["video_id"].numpy()]
    dense = loaded.signatures["predict_dense"]
    spec = dense.structured_input_signature[1]
    result["dense_inputs"] = sorted(spec)
    d = json.loads(sys.argv[3])
    out = dense(rgb=tf.constant(d["rgb"], tf.uint8), audio=tf.constant(d["audio"], tf.uint8),
                num_frames=tf.constant(d["num_frames"], tf.int32),
                title=tf.constant(d["title"]))
    result["dense_predictions"] = out["predictions"].numpy().tolist()
    result["dense_indexes"] = out["class_indexes"].numpy().tolist()
    try:
        loaded.signatures["serving_default"](example_bytes=tf.constant([bytes.fromhex(sys.argv[4])]))
        result["bad_title"] = "accepted"
    except tf.errors.InvalidArgumentError as exc:
        result["bad_title"] = "rejected: " + exc.message
    print(json.dumps(result))
""")


def test_saved_model_takes_raw_titles_in_a_fresh_process(tmp_path):
    from videotag.export import export_saved_model

    cfg = _config(tmp_path, **{"model.fusion.type": "text_guided", "export.top_k": 6})
    model = videotag.build_model(cfg)
    records = [frame_record(f"v{i}".encode(), (1,), rgb_size=RGB, audio_size=AUDIO,
                            frames=i + 1, seed=i, title=t)
               for i, t in enumerate(["小猫和狗狗 cat", "", "Dog video!", "zebra 斑马"])]
    records.append(frame_record(b"untitled", (2,), rgb_size=RGB, audio_size=AUDIO, frames=3))
    shard = write_file(tmp_path / "serve.tfrecord", records)
    path = export_saved_model(model, cfg, str(tmp_path / "exports"))

    (batch,) = list(make_dataset(cfg.data, shard, 8, training=False))
    assert batch["title"].numpy()[1] == b"" and batch["title"].numpy()[4] == b""
    want = model(model_inputs(cfg.data, batch), training=False)
    scores, indexes = tf.math.top_k(want["tags"], k=6)
    dense = _batch(titles=("猫 cat", "", "video"))
    dense_json = json.dumps({"rgb": dense["rgb"].tolist(), "audio": dense["audio"].tolist(),
                             "num_frames": dense["num_frames"].tolist(),
                             "title": ["猫 cat", "", "video"]})
    dense_want = np.sort(_np(model(dense, training=False)["tags"]), axis=1)[:, ::-1]
    bad = frame_record(b"bad", (1,), rgb_size=RGB, audio_size=AUDIO, title=b"ok \xff\xfe")

    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(script), str(path), shard, dense_json, bad.hex()],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    assert served["video_id"] == ["v0", "v1", "v2", "v3", "untitled"]
    np.testing.assert_array_equal(served["class_indexes"], indexes.numpy())
    np.testing.assert_allclose(served["predictions"], scores.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(served["embedding"], want["embedding"].numpy(), rtol=1e-4, atol=1e-4)
    assert served["dense_inputs"] == ["audio", "num_frames", "rgb", "title"]
    np.testing.assert_allclose(served["dense_predictions"], dense_want, rtol=1e-4, atol=1e-5)
    assert served["bad_title"].startswith("rejected: ")
    assert "context key title is not valid UTF-8 text" in served["bad_title"]


def test_train_builds_the_vocabulary_and_reports_categories(tmp_path):
    from videotag.evaluation.evaluator import category_head_accuracy
    from videotag.training import train
    from videotag.training.trainer import load_trained

    path = write_file(tmp_path / "data.tfrecord", _records(24, categories=True))
    cfg = _config(tmp_path, **{
        "model.text.vocab_file": "''", "model.text.vocab_min_count": 2,
        "data.train_data_pattern": path, "data.eval_data_pattern": path,
        "data.num_categories": 3, "model.head.tasks": "[tags, category]",
        "train.epochs": 1, "train.eval_before_training": "false"})
    model_dir = tmp_path / "run"
    summary = train(cfg, str(model_dir), verbose=False)
    assert summary["epochs"] == 1
    # tokens of the 24 titles (TITLES 3 times) seen at least twice, most frequent
    # first: dog 12, cat 9, then a, 狗 and 猫 6 each (ties in token order)
    assert (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")[:5] == [
        "dog", "cat", "a", "狗", "猫"]
    saved, model = load_trained(str(model_dir))
    assert saved.model.text.vocab_file == str(model_dir / "vocab.txt")
    assert model.get_layer("title_tokens").vocabulary[:2] == ["dog", "cat"]
    result = category_head_accuracy(model, saved)
    assert result["num_videos"] == 24
    assert 0.0 <= result["category_top1"] <= result["category_top5"] == 1.0  # 3 categories


def test_category_top_k_accuracy_by_hand():
    from videotag.evaluation import category_top_k_accuracy as top_k_accuracy

    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]])
    targets = np.array([1, 1, 0, 2])
    assert top_k_accuracy(probs, targets, 1) == 0.25  # only the first
    assert top_k_accuracy(probs, targets, 2) == 0.75  # the second and third at rank 2
    assert top_k_accuracy(probs, targets, 3) == 1.0   # a tie counts against the target


def test_demo_data_brings_titles_and_categories(tmp_path, monkeypatch):
    from videotag.data import demo
    from videotag.data.sources import resolve_data

    monkeypatch.setenv(demo.DEMO_DIR_ENV, str(tmp_path / "demo"))
    cfg = videotag.config.load("multimodal_demo", ["model.head.tasks=[tags, category]"])
    assert cfg.data.num_categories == 0  # the demo data sets it
    cfg = resolve_data(cfg, verbose=False)
    assert cfg.data.train_data_pattern == str(tmp_path / "demo" / "train*.tfrecord")
    assert cfg.data.num_categories == len(demo.CATEGORIES) == 8
    batch = next(iter(make_dataset(cfg.data, cfg.data.eval_data_pattern, 256, training=False)))
    titles = [t.decode("utf-8") for t in batch["title"].numpy()]
    assert any(any("\u4e00" <= c <= "\u9fff" for c in t) for t in titles)  # Chinese titles
    assert 0 < sum(t == "" for t in titles) < 30
    categories = batch["category"].numpy()
    assert set(categories) == set(range(8))


@pytest.mark.parametrize("fusion", ["concat_se", "text_guided"])
def test_fgm_cuts_multimodal_at_frames_and_title_embedding(tmp_path, fusion):
    """The FGM trainer's cut of MULTIMODAL: the frames and the title embedding are
    perturbed, and the cut model computes exactly what the whole model does."""
    from videotag.training.adversarial import SplitModel, perturbation

    model = videotag.build_model(_config(tmp_path, **{"model.fusion.type": fusion}))
    split = SplitModel(model)
    assert sorted(split.perturbable) == ["dequantize_audio", "dequantize_rgb", "title_embedding"]
    batch = _batch()
    cut = split.preprocess(batch, training=False)
    whole = model(batch, training=False)
    through = split.body(cut, training=False)
    np.testing.assert_allclose(through["tags"], whole["tags"], rtol=1e-5, atol=1e-6)
    # a perturbation of the title embedding alone changes the output
    index = split.names.index("title_embedding")
    noisy = list(cut)
    noisy[index] = cut[index] + perturbation(tf.random.normal(tf.shape(cut[index]), seed=1), 1.0)
    moved = split.body(noisy, training=False)
    assert np.max(np.abs(moved["tags"] - whole["tags"])) > 1e-4
