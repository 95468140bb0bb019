"""Video-level models (LOGISTIC, MOE) against the YT8M starter code, video-level
records (the mean of the dequantized frames), the demo data in that form, and a
model trained, scored, exported, served and predicting on such records; records of
the other kind stop a run at its start."""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import (
    finish_processes,
    frame_record,
    learnable_records,
    start_process,
    write_file,
)
from tests.test_heads import starter_moe
from videotag.data import make_dataset
from videotag.data.means import video_level_record
from videotag.errors import ConfigError, DataError

SIZES = {"rgb": 1024, "audio": 128}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _tiny(name, **more):
    values = {"data.num_classes": 7, "data.feature_sizes": "[16, 8]", **more}
    return videotag.config.load(name, [f"{k}={v}" for k, v in values.items()])


def starter_input(mean_rgb, mean_audio):
    """The starter code's model input: the features concatenated (readers.py
    YT8MAggregatedFeatureReader) and `tf.nn.l2_normalize(model_input_raw, 1)`
    (train.py): x / sqrt(max(sum(x^2), 1e-12))."""
    x = np.concatenate([mean_rgb, mean_audio], axis=1).astype(np.float64)
    return x / np.sqrt(np.maximum(np.sum(x * x, axis=1, keepdims=True), 1e-12))


def test_parameter_counts_are_the_starter_codes():
    features, classes = 1024 + 128, 3862
    # video_level_models.py: LogisticModel, one fully_connected layer
    logistic = features * classes + classes
    # MoeModel, moe_num_mixtures=2: gates without bias, experts with
    moe = features * classes * (2 + 1) + features * classes * 2 + classes * 2
    for name, want in (("logistic", logistic), ("moe", moe)):
        cfg = videotag.config.load(name)
        assert (cfg.data.record_type, cfg.data.feature_names, cfg.data.feature_sizes) == (
            "video", ["mean_rgb", "mean_audio"], [1024, 128])
        assert videotag.build_model(cfg).count_params() == want, name
    assert (logistic, moe) == (4_452_886, 22_252_844)


@pytest.mark.parametrize("name", ["logistic", "moe"])
def test_computes_the_starter_code(name):
    cfg = _tiny(name, **{"model.head.num_mixtures": 3})
    model = videotag.build_model(cfg)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    batch = {"mean_rgb": rng.normal(size=(4, 16)).astype("float32"),
             "mean_audio": rng.normal(size=(4, 8)).astype("float32")}
    out = model(batch, training=False)
    x = starter_input(batch["mean_rgb"], batch["mean_audio"])
    head = model.get_layer("tags")
    if name == "logistic":
        want = _sigmoid(x @ _np(head.dense.kernel) + _np(head.dense.bias))
    else:
        want = starter_moe(x, _np(head.gates.kernel), _np(head.experts.kernel),
                           _np(head.experts.bias), 7, 3)
    np.testing.assert_allclose(_np(out["tags"]), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(out["embedding"]), x, rtol=1e-5, atol=1e-6)


def test_configs_of_the_other_kind_or_head_are_refused():
    with pytest.raises(ConfigError, match=r"'data.record_type' is frame but MOE is a "
                                          r"video-level model: set data.record_type=video"):
        _tiny("moe", **{"data.record_type": "frame"})
    with pytest.raises(ConfigError, match=r"'data.record_type' is video but NEXTVLAD is a "
                                          r"frame-level model.*\(LOGISTIC, MOE\)"):
        videotag.config.load("nextvlad", ["data.record_type=video"])
    with pytest.raises(ConfigError, match="'model.head.type' must be moe for MOE"):
        _tiny("moe", **{"model.head.type": "logistic"})


def test_video_level_records_are_the_means_of_the_dequantized_frames():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, 1024), dtype=np.uint8)
    audio = rng.integers(0, 256, (5, 128), dtype=np.uint8)  # the audio is longer
    record = frame_record(b"v7", (2, 5), rgb=rgb, audio=audio, title="a title", category=1)
    example = tf.train.Example.FromString(video_level_record(record, SIZES))
    feature = example.features.feature
    for name, frames in (("rgb", rgb), ("audio", audio)):
        mean = (frames.astype(np.float64) * 4 / 255 + 4 / 512 - 2).mean(axis=0)
        # frames dequantized in float32, as the models do, averaged in float64
        np.testing.assert_allclose(feature[f"mean_{name}"].float_list.value, mean, atol=1e-6)
    assert feature["id"].bytes_list.value == [b"v7"]
    assert list(feature["labels"].int64_list.value) == [2, 5]
    assert feature["title"].bytes_list.value == [b"a title"]
    assert list(feature["category"].int64_list.value) == [1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Frame-level and video-level shards of the same learnable videos."""
    root = tmp_path_factory.mktemp("video_level")
    out = {}
    for split, n, seed in (("train", 48, 0), ("validate", 24, 9)):
        frames = learnable_records(n, seed=seed)
        out[f"frame_{split}"] = write_file(root / f"frame_{split}.tfrecord", frames)
        out[split] = write_file(root / f"{split}.tfrecord",
                                [video_level_record(r, SIZES) for r in frames])
    return out


def test_records_of_the_other_kind_stop_at_the_start(shards, tmp_path):
    moe = videotag.config.load("moe", ["data.num_classes=4"])
    with pytest.raises(DataError, match=r"frame_train.tfrecord: record 0 is a frame-level record "
                                        r"\(SequenceExample with frame feature lists audio, rgb\) "
                                        r"but the model reads video-level records"):
        make_dataset(moe.data, shards["frame_train"], 4, training=False)
    nextvlad = videotag.config.load("nextvlad", ["data.num_classes=4"])
    with pytest.raises(DataError, match=r"record 0 is a video-level record \(Example with mean "
                                        r"features mean_audio, mean_rgb\) but the model reads "
                                        r"frame-level records.*use a video-level model "
                                        r"\(LOGISTIC, MOE\)"):
        make_dataset(nextvlad.data, shards["train"], 4, training=False)
    # the command stops before it writes anything, in one line
    model_dir = tmp_path / "m"
    (code, out, err), = finish_processes([start_process(
        ["-m", "videotag", "train", "--model_name=MOE", f"--model_dir={model_dir}",
         f"--train_data_pattern={shards['frame_train']}", "--override=data.num_classes=4"])])
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "is a frame-level record" in lines[0], err[-2000:]
    # (the run lock makes the folder: nothing is in it)
    assert not model_dir.exists() or not list(model_dir.iterdir())


def test_moe_trains_scores_exports_serves_and_predicts(shards, tmp_path):
    from videotag.export import export_saved_model
    from videotag.inference.predict import predict_from_model_dir, predict_from_saved_model
    from videotag.training.trainer import load_trained, train

    cfg = videotag.config.load("moe", [
        "data.num_classes=4", f"data.train_data_pattern={shards['train']}",
        f"data.eval_data_pattern={shards['validate']}", "train.batch_size=8",
        "train.epochs=3", "train.learning_rate=0.05", "train.eval_before_training=true"])
    summary = train(cfg, str(tmp_path / "m"), verbose=False)
    assert summary["validation"]["gap"] > summary["untrained_validation"]["gap"] + 0.3
    cfg, model = load_trained(str(tmp_path / "m"))

    path = export_saved_model(model, cfg, str(tmp_path / "exports"), top_k=4)
    served = tf.saved_model.load(str(path))
    records = [r.numpy() for r in tf.data.TFRecordDataset(shards["validate"]).take(5)]
    by_examples = served.signatures["serving_default"](example_bytes=tf.constant(records))
    means = [tf.train.Example.FromString(r).features.feature for r in records]
    dense = {name: tf.constant([list(f[name].float_list.value) for f in means])
             for name in ("mean_rgb", "mean_audio")}
    by_means = served.signatures["predict_dense"](**dense)
    keras_scores = _np(model(dense, training=False)["tags"])
    for out in (by_examples, by_means):
        np.testing.assert_allclose(
            out["predictions"].numpy(), -np.sort(-keras_scores, axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["embedding"].numpy(),
                                   _np(model(dense)["embedding"]), rtol=1e-5, atol=1e-6)
    assert [v.decode() for v in by_examples["video_id"].numpy()] == [
        f["id"].bytes_list.value[0].decode() for f in means]

    # the warm-up requests are video-level Examples and mean features
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = Path(path) / "assets.extra" / "tf_serving_warmup_requests"
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(warmup))]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default", "predict_dense"] * 2
    first = tf.make_ndarray(logs[0].predict_log.request.inputs["example_bytes"])[0]
    assert len(tf.train.Example.FromString(first).features.feature["mean_rgb"].float_list.value) \
        == 1024
    assert set(logs[1].predict_log.request.inputs) == {"mean_rgb", "mean_audio"}

    # predictions from the model directory and from the SavedModel agree
    from_dir = {p.video_id: p.tags for p in predict_from_model_dir(
        str(tmp_path / "m"), shards["validate"], top_k=3)}
    from_saved = {p.video_id: p.tags for p in predict_from_saved_model(
        str(path), shards["validate"], top_k=3)}
    assert len(from_dir) == 24 and from_dir.keys() == from_saved.keys()
    for video, tags in from_dir.items():
        assert [t[0] for t in tags] == [t[0] for t in from_saved[video]]
        np.testing.assert_allclose([t[2] for t in tags], [t[2] for t in from_saved[video]],
                                   rtol=1e-5)
    with pytest.raises(DataError, match="is a frame-level record"):
        list(predict_from_saved_model(str(path), shards["frame_validate"]))


def test_the_demo_data_in_video_level_form(tmp_path, monkeypatch):
    from videotag.data.demo import generate
    from videotag.data.demo_video import ensure_video_demo_data
    from videotag.data.sources import resolve_data

    demo = generate(str(tmp_path / "demo"), num_train=6, num_eval=3, num_shards=2)
    video = ensure_video_demo_data(demo, verbose=False)
    assert video.root == str(tmp_path / "demo" / "video") and video.num_classes == demo.num_classes
    for frame_pattern, video_pattern in ((demo.train_pattern, video.train_pattern),
                                         (demo.eval_pattern, video.eval_pattern)):
        frames = sorted(tf.io.gfile.glob(frame_pattern))
        videos = sorted(tf.io.gfile.glob(video_pattern))
        assert [os.path.basename(p) for p in frames] == [os.path.basename(p) for p in videos]
        for f, v in zip(frames, videos):
            want = [video_level_record(r.numpy(), SIZES) for r in tf.data.TFRecordDataset(f)]
            assert [r.numpy() for r in tf.data.TFRecordDataset(v)] == want
    # reused while the frame-level data stays the same
    stamp = os.stat(os.path.join(video.root, "demo.json")).st_mtime_ns
    assert ensure_video_demo_data(demo, verbose=False) == video
    assert os.stat(os.path.join(video.root, "demo.json")).st_mtime_ns == stamp
    manifest = json.loads((tmp_path / "demo" / "video" / "demo.json").read_text())
    assert manifest["frame_manifest"]["num_train"] == 6

    # a video-level model with no data given trains on it (here the small demo above)
    import videotag.data.demo as demo_module

    monkeypatch.setattr(demo_module, "ensure_demo_data", lambda verbose=True: demo)
    cfg = resolve_data(videotag.config.load("moe_demo"), verbose=False)
    assert cfg.data.train_data_pattern == video.train_pattern
    with pytest.raises(ConfigError, match="the video-level demo data has"):
        resolve_data(videotag.config.load("moe_demo", ["data.feature_names=[rgb, audio]"]),
                     verbose=False)
