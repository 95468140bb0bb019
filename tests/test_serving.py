"""Serving: the exported SavedModels in a fresh process without videotag or Keras,
against the Keras model, for a tags + category model and a category-only model that
reads titles; malformed requests; saved_model_cli; warm-up file; models.config;
the .keras file beside the SavedModel."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format, unknown_fields
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

import videotag
from tests.helpers import frame_record, tiny_config, write_file
from tests.title_model import build_title_model
from videotag.data import make_dataset, translate_error
from videotag.data.tf_errors import describe_parse_failure
from videotag.errors import ModelError
from videotag.export import export_saved_model
from videotag.export.tf_serving import models_config_text, parse_predict_log
from videotag.training.trainer import compile_model

CATEGORIES = ["news", "sports", "music"]
RNG = np.random.default_rng(7)


def _frames(n, size):
    return RNG.integers(0, 256, (n, size), dtype=np.uint8)


# (id, rgb frames, audio frames, title): lengths cover short, over max_frames (20)
# and rgb/audio of different lengths (the shorter counts)
VIDEOS = [
    (b"v0", _frames(3, 1024), _frames(3, 128), "猫が歩く cat walks"),
    (b"v1", _frames(7, 1024), _frames(7, 128), ""),
    (b"v2", _frames(25, 1024), _frames(25, 128), None),  # no title at all
    (b"v3", _frames(6, 1024), _frames(4, 128), "abc"),
]


def _keras_inputs(video, with_title):
    vid, rgb, audio, title = video
    n = min(len(rgb), len(audio), 20)
    inputs = {"rgb": rgb[None, :n], "audio": audio[None, :n], "num_frames": np.array([n], np.int32)}
    if with_title:
        inputs["title"] = np.array([title or ""])
    return inputs


def _dense_batch(with_title):
    steps = 20
    batch = {"rgb": np.zeros((4, steps, 1024), np.uint8), "audio": np.zeros((4, steps, 128), np.uint8),
             "num_frames": np.zeros(4, np.int32)}
    for i, (_, rgb, audio, _) in enumerate(VIDEOS):
        n = min(len(rgb), len(audio), steps)
        batch["rgb"][i, :n], batch["audio"][i, :n], batch["num_frames"][i] = rgb[:n], audio[:n], n
    if with_title:
        batch["title"] = np.array([(v[3] or "").encode() for v in VIDEOS], dtype=object)
    return batch


def _two_titles():
    example = tf.train.SequenceExample.FromString(frame_record(b"bad", title="one"))
    example.context.feature["title"].bytes_list.value.append(b"two")
    return example.SerializeToString()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    labels = root / "labels.txt"
    labels.write_text("\n".join(f"tag {i}" for i in range(10)) + "\n")
    categories = root / "categories.txt"
    categories.write_text("\n".join(CATEGORIES) + "\n")
    common = {"data.num_categories": 3, "data.label_file": str(labels),
              "data.category_file": str(categories), "export.top_k": 5}
    multi_cfg = tiny_config(**common, **{"model.head.tasks": "[tags, category]"})
    multi = videotag.build_model(multi_cfg)
    compile_model(multi, multi_cfg)  # a trained model carries an optimizer: not exported
    multi.optimizer.build(multi.trainable_variables)
    title_cfg = tiny_config(**common, **{"model.head.tasks": "[category]", "data.use_title": True})
    titled = build_title_model(title_cfg)
    exported = root / "exports"
    paths = {"multi": Path(export_saved_model(multi, multi_cfg, str(exported), name="multi")),
             "titled": Path(export_saved_model(titled, title_cfg, str(exported), name="titled"))}
    models = {"multi": (multi, multi_cfg), "titled": (titled, title_cfg)}
    return root, paths, models


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    for name in ("videotag", "keras", "tests"):
        sys.modules[name] = None  # none of these can be imported: TensorFlow alone must do
    import numpy as np, tensorflow as tf

    def plain(outputs):
        return {k: (np.char.decode(v.numpy().astype(bytes), "utf-8").tolist()
                    if v.dtype == tf.string else v.numpy().tolist()) for k, v in outputs.items()}

    def error_line(call):
        try:
            call()
            return "accepted"
        except tf.errors.InvalidArgumentError as exc:
            return [l for l in exc.message.splitlines()
                    if "bad request" in l or "example id" in l][0]

    jobs, results = json.load(open(sys.argv[1])), {}
    for name, job in jobs.items():
        loaded = tf.saved_model.load(job["model"])
        serve, dense = loaded.signatures["serving_default"], loaded.signatures["predict_dense"]
        records = [r.numpy() for r in tf.data.TFRecordDataset(job["records"])]
        first = plain(serve(example_bytes=tf.constant(records)))
        arrays = np.load(job["dense"], allow_pickle=True)
        dense_out = plain(dense(**{k: tf.constant(arrays[k]) for k in arrays.files}))
        bad = []
        for record in tf.data.TFRecordDataset(job["bad_records"]):
            line = error_line(lambda: serve(example_bytes=tf.constant([records[0], record.numpy()])))
            again = plain(serve(example_bytes=tf.constant(records)))
            bad.append([line, again["embedding"] == first["embedding"]])
        for path in job["bad_dense"]:
            arrays = np.load(path, allow_pickle=True)
            line = error_line(lambda: dense(**{k: tf.constant(arrays[k]) for k in arrays.files}))
            again = plain(serve(example_bytes=tf.constant(records)))
            bad.append([line, again["embedding"] == first["embedding"]])
        results[name] = {"records": first, "dense": dense_out, "bad": bad}
    print(json.dumps(results))
""")

BAD_RECORDS = [  # (record at index 1 of a request, expected error text)
    (b"garbage", "Invalid protocol message input, example id: record 1"),
    (frame_record(b"bad", rgb_size=1000, title="t"),
     "record 1 (id bad): feature list rgb: frame 0 has 1000 bytes, expected 1024 "
     "(3 of 3 frames wrong)"),
    (frame_record(None, title="t"), "record 1 (no id): context key id is missing"),
    (frame_record(b"empty", frames=0, title="t"), "record 1 (id empty): the video has no frames"),
    (frame_record(b"old", id_key="video_id", title="t"),
     "record 1 (no id): context key id is missing (the record has video_id: set data.id_key)"),
    (frame_record(b"mute", audio=np.zeros((0, 128), np.uint8), title="t"),
     "record 1 (id mute): feature list audio has no frames"),
]
BAD_TITLES = [
    (frame_record(b"latin1", title=b"caf\xe9"),
     "record 1 (id latin1): context key title is not valid UTF-8 text"),
    (_two_titles(), "record 1 (id bad): context key title holds more than one value"),
]


@pytest.fixture(scope="module")
def served(exports):
    root, paths, _ = exports
    jobs = {}
    for name, path in paths.items():
        with_title = name == "titled"
        records = [frame_record(vid, rgb=rgb, audio=audio, title=title)
                   for vid, rgb, audio, title in VIDEOS]
        bad = [r for r, _ in BAD_RECORDS + (BAD_TITLES if with_title else [])]
        dense = _dense_batch(with_title)
        bad_dense = [dict(dense, num_frames=np.array([3, 0, 21, 4], np.int32))]
        if with_title:
            bad_dense.append(dict(dense, title=np.array([b"ok", b"\xff", b"", b""], dtype=object)))
        jobs[name] = {
            "model": str(path),
            "records": write_file(root / f"{name}.tfrecord", records),
            "bad_records": write_file(root / f"{name}.bad.tfrecord", bad),
            "dense": str(root / f"{name}.dense.npz"),
            "bad_dense": [str(root / f"{name}.bad{i}.npz") for i in range(len(bad_dense))],
        }
        np.savez(jobs[name]["dense"], **dense)
        for file, arrays in zip(jobs[name]["bad_dense"], bad_dense):
            np.savez(file, **arrays)
    spec = root / "jobs.json"
    spec.write_text(json.dumps(jobs))
    script = root / "serve.py"
    script.write_text(SERVE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(script), str(spec)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["multi", "titled"])
def test_both_signatures_match_the_keras_model(exports, served, name):
    _, _, models = exports
    model, cfg = models[name]
    with_title = name == "titled"
    result = served[name]
    records, dense = result["records"], result["dense"]
    assert records["video_id"] == [v[0].decode() for v in VIDEOS]
    assert "video_id" not in dense
    assert set(records) - {"video_id"} == set(dense)
    want_keys = {"category_id", "category_score", "category_name", "embedding"}
    if name == "multi":
        want_keys |= {"class_indexes", "predictions", "class_names"}
    assert set(dense) == want_keys  # a category-only model has no tag outputs
    for i, video in enumerate(VIDEOS):
        out = {k: keras.ops.convert_to_numpy(v)[0]
               for k, v in model(_keras_inputs(video, with_title), training=False).items()}
        for served_out in (records, dense):
            np.testing.assert_allclose(served_out["embedding"][i], out["embedding"],
                                       rtol=1e-5, atol=1e-5)
            assert served_out["category_id"][i] == int(np.argmax(out["category"]))
            assert served_out["category_name"][i] == CATEGORIES[served_out["category_id"][i]]
            np.testing.assert_allclose(served_out["category_score"][i], out["category"].max(),
                                       rtol=1e-5)
            if name == "multi":
                order = np.argsort(-out["tags"], kind="stable")[:5]
                assert served_out["class_indexes"][i] == order.tolist()
                np.testing.assert_allclose(served_out["predictions"][i], out["tags"][order],
                                           rtol=1e-5, atol=1e-6)
                assert served_out["class_names"][i] == [f"tag {j}" for j in order]


def test_titles_reach_the_model(exports, served):
    """The title changes the outputs: a record served with its title differs from the
    same frames with another title, as in the Keras model."""
    emb = np.array(served["titled"]["records"]["embedding"])
    model = exports[2]["titled"][0]
    video = VIDEOS[0]
    other = model(_keras_inputs(video[:3] + ("another, longer title",), True), training=False)
    assert not np.allclose(emb[0], keras.ops.convert_to_numpy(other["embedding"])[0], atol=1e-3)


@pytest.mark.parametrize("name", ["multi", "titled"])
def test_malformed_requests_fail_alone(served, name):
    bad = served[name]["bad"]
    expected = [text for _, text in BAD_RECORDS + (BAD_TITLES if name == "titled" else [])]
    expected.append("num_frames must be between 1 and 20 (the frames per video sent): "
                    "row 1 has 0, row 2 has 21")
    if name == "titled":
        expected.append("title is not valid UTF-8 text in rows 1")
    assert len(bad) == len(expected)
    for (line, next_request_ok), text in zip(bad, expected):
        assert text in line, (text, line)
        assert next_request_ok  # the following valid request is served, same answers


@pytest.mark.parametrize("name", ["multi", "titled"])
def test_the_pipeline_and_the_served_model_say_the_same(exports, served, name, tmp_path):
    """Every bad record is described alike by the tf.data pipeline (what training,
    evaluation and prediction read) and by the served model, in a fresh process."""
    cfg = exports[2][name][1]
    read = dataclasses.replace(cfg.data, num_categories=0)  # served records carry none
    first = frame_record(VIDEOS[0][0], rgb=VIDEOS[0][1], audio=VIDEOS[0][2], title=VIDEOS[0][3])
    kinds = BAD_RECORDS + (BAD_TITLES if name == "titled" else [])
    for (record, _), (line, _) in zip(kinds, served[name]["bad"]):
        path = write_file(tmp_path / "shard.tfrecord", [first, record])
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            list(make_dataset(read, path, 4, training=False))
        text = str(translate_error(info.value))
        from_pipeline = text.removeprefix(f"bad record: {path}: ").removesuffix(
            " (set data.on_bad_record=skip to drop and count such records)")
        from_serving = describe_parse_failure(line) or (
            line.split("malformed record(s): ", 1)[1].rsplit("]", 1)[0])
        assert from_pipeline.startswith("record 1") and from_pipeline == from_serving, text


def _signature_block(text, name):
    return text.split(f"signature_def['{name}']")[1].split("signature_def[")[0]


def _tensor(block, kind, name):
    return block.split(f"{kind}['{name}']")[1].split("['")[0]


def test_saved_model_cli_names_dtypes_and_shapes(exports):
    _, paths, _ = exports
    cli = Path(sys.executable).with_name("saved_model_cli")
    for name, path in paths.items():
        proc = subprocess.run([str(cli), "show", "--all", "--dir", str(path)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs = [("category_id", "DT_INT32", "(-1)"), ("category_score", "DT_FLOAT", "(-1)"),
                   ("category_name", "DT_STRING", "(-1)"),
                   ("embedding", "DT_FLOAT", "(-1, 32)" if name == "multi" else "(-1, 8)")]
        if name == "multi":
            outputs += [("class_indexes", "DT_INT32", "(-1, 5)"), ("predictions", "DT_FLOAT", "(-1, 5)"),
                        ("class_names", "DT_STRING", "(-1, 5)")]
        for signature in ("serving_default", "predict_dense"):
            block = _signature_block(proc.stdout, signature)
            inputs = ([("example_bytes", "DT_STRING", "(-1)")] if signature == "serving_default" else
                      [("rgb", "DT_UINT8", "(-1, -1, 1024)"), ("audio", "DT_UINT8", "(-1, -1, 128)"),
                       ("num_frames", "DT_INT32", "(-1)")]
                      + ([("title", "DT_STRING", "(-1)")] if name == "titled" else []))
            extra = [("video_id", "DT_STRING", "(-1)")] if signature == "serving_default" else []
            for kind, specs in (("inputs", inputs), ("outputs", outputs + extra)):
                assert block.count(f"{kind}['") == len(specs), (name, signature, kind, block)
                for tensor, dtype, shape in specs:
                    part = _tensor(block, kind, tensor)
                    assert f"dtype: {dtype}" in part and f"shape: {shape}" in part, (tensor, part)
            if name == "titled":
                assert "class_indexes" not in block


def test_warmup_file_holds_valid_predict_requests(exports):
    _, paths, _ = exports
    for name, path in paths.items():
        loaded = tf.saved_model.load(str(path))
        seen = []
        warmup = path / "assets.extra" / "tf_serving_warmup_requests"
        for raw in tf.data.TFRecordDataset(str(warmup)):
            log = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
            assert log.WhichOneof("log_type") == "predict_log"
            request = log.predict_log.request
            assert len(unknown_fields.UnknownFieldSet(request)) == 0
            assert request.model_spec.name == name
            signature = loaded.signatures[request.model_spec.signature_name]
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            assert set(inputs) == set(signature.structured_input_signature[1])
            out = signature(**inputs)  # the request runs
            batch = len(next(iter(inputs.values())))
            assert all(v.shape[0] == batch for v in out.values())
            seen.append((request.model_spec.signature_name, batch))
            # the exporter's own reader decodes the same request
            name_, signature_name, arrays = parse_predict_log(raw.numpy())
            assert (name_, signature_name) == (name, request.model_spec.signature_name)
            assert arrays.keys() == inputs.keys()
            for key, value in arrays.items():
                np.testing.assert_array_equal(value, inputs[key].numpy())
        # a model with tags also warms up its predict_segments (the category-only one has none)
        signatures = ("serving_default", "predict_dense") + (
            ("predict_segments",) if name == "multi" else ())
        assert sorted(seen) == sorted((s, b) for s in signatures for b in (1, 8))


def test_models_config_lists_every_export_and_parses(exports, tmp_path):
    root, _, _ = exports
    config = (root / "exports" / "models.config").read_text()
    parsed = text_format.Parse(config, model_server_config_pb2.ModelServerConfig())
    entries = [(c.name, c.base_path, c.model_platform) for c in parsed.model_config_list.config]
    assert entries == [("multi", "/models/multi", "tensorflow"),
                       ("titled", "/models/titled", "tensorflow")]
    odd = 'we"ird\\name'
    parsed = text_format.Parse(models_config_text([(odd, "/models/x")]),
                               model_server_config_pb2.ModelServerConfig())
    assert parsed.model_config_list.config[0].name == odd
    # a models.config written by hand is left alone
    cfg = tiny_config()
    own = tmp_path / "models.config"
    own.write_text("model_config_list {}\n")
    export_saved_model(videotag.build_model(cfg), cfg, str(tmp_path), save_keras=False)
    assert own.read_text() == "model_config_list {}\n"
    assert (tmp_path / "nextvlad" / "1" / "saved_model.pb").is_file()
    assert not (tmp_path / "nextvlad" / "1" / "assets.extra" / "model.keras").exists()


def test_keras_file_beside_the_saved_model(exports):
    _, paths, models = exports
    model, cfg = models["multi"]
    again = keras.saving.load_model(paths["multi"] / "assets.extra" / "model.keras")
    inputs = _keras_inputs(VIDEOS[1], False)
    for key in ("tags", "category", "embedding"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(again(inputs)[key]),
                                   keras.ops.convert_to_numpy(model(inputs)[key]), rtol=1e-6)
    saved = videotag.config.load(str(paths["multi"] / "assets.extra" / "videotag_config.yaml"))
    assert saved.to_dict() == cfg.to_dict()


def test_the_saved_model_holds_the_weights_alone(exports):
    _, paths, models = exports
    model = models["multi"][0]
    reader = tf.train.load_checkpoint(str(paths["multi"] / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    assert not [name for name in shapes if "optimizer" in name]
    weights = sum(int(np.prod(shape)) for name, shape in shapes.items()
                  if name.endswith("VARIABLE_VALUE") and "seed" not in name)
    assert weights == sum(int(np.prod(w.shape)) for w in model.weights)


def test_export_refuses_models_it_cannot_feed():
    cfg = tiny_config()
    inputs = {"rgb": keras.Input((None, 1024), dtype="uint8", name="rgb"),
              "num_frames": keras.Input((), dtype="int32", name="num_frames"),
              "likes": keras.Input((), dtype="float32", name="likes")}
    x = keras.layers.Concatenate()([keras.ops.mean(keras.ops.cast(inputs["rgb"], "float32"), 1),
                                    keras.ops.expand_dims(inputs["likes"], -1)])
    model = keras.Model(inputs, {"tags": keras.layers.Dense(10, activation="sigmoid")(x),
                                 "embedding": x})
    with pytest.raises(ModelError, match="model input 'likes' is not a data feature"):
        export_saved_model(model, cfg, "unused")
