"""Every registered model, at tiny size: outputs, a training step on records read from
a TFRecord, config and `.keras` round trips, and the exported SavedModel served in a
fresh process (TensorFlow only) giving the Keras model's outputs."""

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
from tests.tiny_models import (
    FEATURE_SIZES,
    NUM_CLASSES,
    TINY_OVERRIDES,
    ZOO,
    check_registered,
    tiny_batch,
    tiny_model_config,
)
from videotag.data import for_keras, make_dataset, model_inputs
from videotag.data.means import video_level_record
from videotag.errors import ConfigError
from videotag.export import export_saved_model
from videotag.models.interface import DISTILLATION_OUTPUTS
from videotag.training.trainer import compile_model

NUM_FRAMES = [7, 3, 1, 5]
_MODELS = {}


def _model(name):
    """(cfg, model) of the tiny `name`, built once per session of this module."""
    if name not in _MODELS:
        cfg = tiny_model_config(name)
        keras.utils.set_random_seed(1)
        _MODELS[name] = (cfg, videotag.build_model(cfg))
    return _MODELS[name]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_every_registered_model_has_a_tiny_config():
    missing = sorted(set(videotag.list_models()) - set(TINY_OVERRIDES))
    assert not missing, f"add tiny sizes for {missing} to TINY_OVERRIDES in tests/tiny_models.py"


def test_unknown_model_names_list_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        videotag.config.load(None, model_name="NETVLADX")
    for name in videotag.list_models():
        assert name in str(info.value)


@pytest.mark.parametrize("name", ZOO)
def test_outputs_are_probabilities_and_an_embedding(name):
    cfg, model = _model(name)
    batch = tiny_batch(cfg, NUM_FRAMES, frames=8)
    for training in (False, True):
        out = model(batch, training=training)
        tags, embedding = _np(out["tags"]), _np(out["embedding"])
        assert tags.shape == (4, NUM_CLASSES)
        assert embedding.ndim == 2 and embedding.shape[0] == 4 and embedding.shape[1] > 0
        assert np.all((tags >= 0) & (tags <= 1))
        assert not np.isnan(tags).any() and not np.isnan(embedding).any()
    # the videos differ, so do their scores
    assert np.abs(tags[0] - tags[1]).max() > 1e-6


@pytest.mark.parametrize("name", ZOO)
def test_category_head_when_configured(name):
    cfg = tiny_model_config(name, **{"data.num_categories": 3,
                                     "model.head.tasks": "[tags, category]"})
    model = videotag.build_model(cfg)
    out = model(tiny_batch(cfg, NUM_FRAMES), training=False)
    # a mixture trained with distillation also outputs its logits (not served)
    assert set(out) - set(DISTILLATION_OUTPUTS) == {"tags", "category", "embedding"}
    np.testing.assert_allclose(_np(out["category"]).sum(-1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """{record type: a TFRecord of 8 tiny videos}: 1 to 9 frames each in the YT8M
    frame-level format, and the same videos in the video-level format (their mean
    dequantized frames)."""
    rng = np.random.default_rng(3)
    records = []
    for i in range(8):
        frames = int(rng.integers(1, 10))
        records.append(frame_record(
            f"vid{i}".encode(), labels=(int(rng.integers(0, NUM_CLASSES)),), frames=frames,
            rgb_size=FEATURE_SIZES[0], audio_size=FEATURE_SIZES[1], seed=i, title=f"video {i}"))
    root = tmp_path_factory.mktemp("zoo")
    sizes = {"rgb": FEATURE_SIZES[0], "audio": FEATURE_SIZES[1]}
    return {"frame": write_file(root / "train0.tfrecord", records),
            "video": write_file(root / "video0.tfrecord",
                                [video_level_record(r, sizes) for r in records])}


@pytest.mark.filterwarnings("ignore:.*shuffle=True.*", "ignore:.*ran out of data.*")
@pytest.mark.parametrize("name", ZOO)
def test_one_fit_step_on_records(name, shards):
    cfg, model = _model(name)
    shard = shards[cfg.data.record_type]
    ds = for_keras(cfg.data, make_dataset(cfg.data, shard, 4, training=True, seed=0),
                   tasks=cfg.model.head.tasks)
    compile_model(model, cfg)
    before = [_np(w).copy() for w in model.trainable_weights]
    history = model.fit(ds.take(1), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(b, _np(w)) for b, w in zip(before, model.trainable_weights)]
    assert sum(changed) >= len(changed) // 2, f"{sum(changed)} of {len(changed)} weights moved"


@pytest.mark.parametrize("name", ZOO)
def test_config_round_trip(name, tmp_path):
    cfg, _ = _model(name)
    cfg.save(tmp_path / "config.yaml")
    again = videotag.config.load(str(tmp_path / "config.yaml"))
    assert again.to_dict() == cfg.to_dict()
    assert type(again.model) is type(cfg.model)


@pytest.mark.parametrize("name", ZOO)
def test_keras_file_round_trip(name, tmp_path):
    cfg, model = _model(name)
    batch = tiny_batch(cfg, NUM_FRAMES, frames=8, seed=4)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    a, b = model(batch, training=False), again(batch, training=False)
    for key in a:
        np.testing.assert_allclose(_np(a[key]), _np(b[key]), rtol=1e-5, atol=1e-6)


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["videotag"] = None   # TensorFlow alone must serve the models
    sys.modules["keras"] = None
    import tensorflow as tf
    result = {}
    for path, shard in zip(sys.argv[1::2], sys.argv[2::2]):
        records = [r.numpy() for r in tf.data.TFRecordDataset(shard)]
        out = tf.saved_model.load(path).signatures["serving_default"](
            example_bytes=tf.constant(records))
        result[path] = {k: v.numpy().tolist() for k, v in out.items()
                        if k in ("class_indexes", "predictions", "embedding")}
        result[path]["video_id"] = [v.decode() for v in out["video_id"].numpy()]
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def served(shards, tmp_path_factory):
    """Exports every registered tiny model, serves all of them in one fresh process
    (each on the records of its kind), and returns {name: (served outputs, Keras
    outputs on the same records)}."""
    root = tmp_path_factory.mktemp("exports")
    paths, expected, ids, served_shards = {}, {}, {}, []
    for name in videotag.list_models():
        if TINY_OVERRIDES.get(name) is None:
            continue
        cfg, model = _model(name)
        paths[name] = str(export_saved_model(model, cfg, str(root)))
        shard = shards[cfg.data.record_type]
        served_shards += [paths[name], shard]
        (batch,) = list(make_dataset(cfg.data, shard, 8, training=False, bucket=False))
        ids[name] = [v.decode() for v in batch["video_id"].numpy()]
        out = model(model_inputs(cfg.data, batch), training=False)
        expected[name] = {k: _np(v) for k, v in out.items()}
    script = root / "serve.py"
    script.write_text(SERVE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run([sys.executable, str(script), *served_shards], cwd=root,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (out[path], expected[name], ids[name]) for name, path in paths.items()}


@pytest.mark.parametrize("name", ZOO)
def test_saved_model_serves_like_the_keras_model(name, served):
    check_registered(name)
    got, want, ids = served[name]
    assert got["video_id"] == ids
    scores, indexes = tf.math.top_k(want["tags"], k=NUM_CLASSES)
    np.testing.assert_allclose(got["predictions"], scores.numpy(), rtol=1e-4, atol=1e-5)
    # the order may differ only between equal scores
    top = np.take_along_axis(want["tags"], np.asarray(got["class_indexes"]), axis=1)
    np.testing.assert_allclose(top, scores.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["embedding"], want["embedding"], rtol=1e-4, atol=1e-4)
