"""Ensembles: two different models (NeXtVLAD and soft-DBoF, seeing 20 and 12 frames)
averaged score what the average of their probabilities scores; the exported ensemble
(one SavedModel, one member given as a SavedModel) serves in a fresh TensorFlow-only
process what the Python ensemble computes; members must share classes."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import videotag
from tests.helpers import (
    faint_records,
    finish_processes,
    start_process,
    tiny_config,
    write_file,
)
from videotag.data import make_dataset, model_inputs
from videotag.errors import ConfigError, ModelError
from videotag.evaluation import StreamingEvaluator
from videotag.evaluation.evaluator import run_evaluation
from videotag.export import export_saved_model
from videotag.inference import predict_from_model
from videotag.inference.ensemble import Member, build_ensemble, load_member
from videotag.training.trainer import train

CLASSES = 4
COMMON = {"data.num_classes": CLASSES, "train.batch_size": 8, "train.epochs": 1,
          "train.learning_rate": 0.01, "train.tensorboard": False, "eval.batch_size": 16}


def _softdbof(root, **kw):
    overrides = {**COMMON, "data.max_frames": 12, "model.cluster_size": 16,
                 "model.hidden_size": 16, "model.max_pool": True,
                 "model.gated_pooling": False, **kw}  # max pooling, not with the gate
    return videotag.config.load("softdbof", [f"{k}={v}" for k, v in overrides.items()])


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    (root / "labels.txt").write_text("cat\ndog\ncar\nsea\n")
    write_file(root / "train.tfrecord", faint_records(32, CLASSES, seed=5, frames=5))
    # 16 frames: the soft-DBoF member sees the first 12 of them, NeXtVLAD all
    write_file(root / "val.tfrecord", faint_records(24, CLASSES, seed=6, frames=16))
    data = {"data.train_data_pattern": str(root / "train.tfrecord"),
            "data.label_file": str(root / "labels.txt")}
    train(tiny_config(**COMMON, **data, **{"train.seed": 1}), str(root / "nextvlad"),
          verbose=False)
    train(_softdbof(root, **data), str(root / "softdbof"), verbose=False)
    loaded = [load_member(str(root / "nextvlad")), load_member(str(root / "softdbof"))]
    return root, loaded


def _outputs(member, pattern):
    """(ids, tags [N, C], embeddings [N, D]) of one member on its own pipeline."""
    ids, tags, embeddings = [], [], []
    for batch in make_dataset(member.cfg.data, pattern, 16, training=False):
        out = member.model(model_inputs(member.cfg.data, batch), training=False)
        ids += [v.decode() for v in batch["video_id"].numpy()]
        tags.append(keras.ops.convert_to_numpy(out["tags"]))
        embeddings.append(keras.ops.convert_to_numpy(out["embedding"]))
    return ids, np.concatenate(tags), np.concatenate(embeddings)


def _labels(ids):
    labels = np.zeros((len(ids), CLASSES), bool)
    for i, vid in enumerate(ids):
        labels[i, int(vid.split("-")[1]) % CLASSES] = True
    return labels


def test_an_ensemble_scores_the_average_of_its_members_probabilities(members):
    root, loaded = members
    val = str(root / "val.tfrecord")
    (ids, a, _), (ids_b, b, _) = _outputs(loaded[0], val), _outputs(loaded[1], val)
    assert ids == ids_b
    labels = _labels(ids)
    for weights in (None, [3.0, 1.0]):
        model, cfg = build_ensemble(loaded, weights)
        assert cfg.data.max_frames == 20
        w = weights or [1.0, 1.0]
        expected = StreamingEvaluator(CLASSES, top_k=3, hit_at=[2])
        expected.add((w[0] * a + w[1] * b) / sum(w), labels)
        got = run_evaluation(model, cfg, val, top_k=3, hit_at=[2], verbose=False).metrics
        for key, value in expected.result().items():
            assert got[key] == pytest.approx(value, abs=1e-6), (weights, key)
    alone = [StreamingEvaluator(CLASSES, top_k=3) for _ in range(2)]
    for evaluator, probabilities in zip(alone, (a, b)):
        evaluator.add(probabilities, labels)
    assert {e.gap() for e in alone} != {got["gap"]}  # a third model, not one of the two
    rows = list(predict_from_model(cfg, model, val, top_k=2))
    mean = (3 * a + b) / 4
    for row, probabilities in zip(rows, mean):
        assert [t[0] for t in row.tags] == np.argsort(-probabilities, kind="stable")[:2].tolist()
        assert [t[1] for t in row.tags] == [["cat", "dog", "car", "sea"][t[0]] for t in row.tags]
        np.testing.assert_allclose([t[2] for t in row.tags], np.sort(probabilities)[::-1][:2],
                                   atol=1e-6)


SERVE = textwrap.dedent("""
    import json, sys
    for name in ("videotag", "keras", "tests"):
        sys.modules[name] = None  # TensorFlow alone must do
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[2])]
    out = loaded.signatures["serving_default"](example_bytes=tf.constant(records))
    print(json.dumps({k: (v.numpy().astype(str).tolist() if v.dtype == tf.string
                          else v.numpy().tolist()) for k, v in out.items()}))
""")


def test_the_exported_ensemble_serves_the_python_ensemble_in_tensorflow_alone(members):
    root, loaded = members
    exports = root / "exports"
    # the soft-DBoF member is given as an exported SavedModel
    single = export_saved_model(loaded[1].model, loaded[1].cfg, str(exports))
    ((code, stdout, err),) = finish_processes([start_process([
        "-m", "videotag", "export", "--ensemble", str(root / "nextvlad"), str(single),
        f"--export_dir={exports}", "--name=duo", "--top_k=4"])])
    assert code == 0, err
    path = exports / "duo" / "1"
    assert f"exported an ensemble of 2 models to {path}" in stdout
    described = json.loads((path / "assets.extra" / "ensemble.json").read_text())
    assert [m["source"] for m in described["members"]] == [str(root / "nextvlad"), str(single)]
    assert described["embedding"] == "concat"
    assert "duo" in (exports / "models.config").read_text()
    (root / "serve.py").write_text(SERVE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(root / "serve.py"), str(path),
                           str(root / "val.tfrecord")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    val = str(root / "val.tfrecord")
    (ids, a, ea), (_, b, eb) = _outputs(loaded[0], val), _outputs(loaded[1], val)
    assert served["video_id"] == ids
    mean = (a + b) / 2
    assert served["class_indexes"] == np.argsort(-mean, axis=1, kind="stable").tolist()
    np.testing.assert_allclose(served["predictions"], -np.sort(-mean, axis=1), atol=1e-5)
    names = ["cat", "dog", "car", "sea"]
    assert served["class_names"][0] == [names[i] for i in served["class_indexes"][0]]
    np.testing.assert_allclose(served["embedding"], np.concatenate([ea, eb], axis=1), atol=1e-5)


def test_members_must_share_classes(members, tmp_path):
    root, loaded = members

    def member(cfg, source="other"):
        return Member(source, cfg, videotag.build_model(cfg))

    six = tiny_config(**{**COMMON, "data.num_classes": 6})
    with pytest.raises(ConfigError, match=r"ensemble members .*nextvlad and other do not share "
                                          r"classes: 4 and 6 classes \(data.num_classes\)"):
        build_ensemble([loaded[0], member(six)])
    (tmp_path / "names.txt").write_text("cat\ndog\nbus\nsea\n")
    renamed = tiny_config(**{**COMMON, "data.label_file": str(tmp_path / "names.txt")})
    with pytest.raises(ConfigError, match=r"do not share classes: class 2 is 'car' and 'bus'"):
        build_ensemble([loaded[0], member(renamed)])
    with pytest.raises(ConfigError, match=r"--ensemble_embedding=mean needs members of one "
                                          r"embedding size, got sizes \[16, 32\]"):
        build_ensemble(loaded, embedding="mean")
    with pytest.raises(ConfigError, match=r"one non-negative weight per member"):
        build_ensemble(loaded, [1.0])
    (tmp_path / "bare" / "1").mkdir(parents=True)
    (tmp_path / "bare" / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelError, match=r"this SavedModel has no assets.extra/model.keras"):
        load_member(str(tmp_path / "bare" / "1"))


def test_segments_take_one_model_not_an_ensemble(members):
    root, _ = members
    models = [str(root / "nextvlad"), str(root / "softdbof")]
    results = finish_processes([
        start_process(["-m", "videotag", "eval", "--segments", "--ensemble", *models]),
        start_process(["-m", "videotag", "predict", "--segments", "--ensemble", *models,
                       f"--input_data_pattern={root / 'val.tfrecord'}"]),
        start_process(["-m", "videotag", "eval", "--segments", f"--model_dir={models[0]}",
                       "--hit_at=1,5"])])
    (eval_code, _, eval_err), (predict_code, _, predict_err), (hit_code, _, hit_err) = results
    assert eval_code == 1 and predict_code == 1 and hit_code == 1
    assert hit_err.strip().splitlines()[-1] == (
        "error: --hit_at is a video-level figure; --segments reports the segment metric "
        "(MAP@--top_n over the rated segments) only")
    assert "error: --segments scores one model directory (--model_dir)" in eval_err
    assert ("error: --segments predicts with one model (--model_dir or --saved_model), not "
            "--ensemble") in predict_err
    assert "Traceback" not in eval_err + predict_err
