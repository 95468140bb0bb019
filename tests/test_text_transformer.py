"""The transformer title encoder from a keras-hub BERT preset (made here with random
weights by `videotag make-text-preset`): tokenisation equal to keras-hub's tokenizer,
the encoder equal to the backbone it comes from (and the TextCNN to a NumPy one),
FGM on the token embeddings, a frozen encoder kept bit for bit while the rest trains,
the `.keras` file without the preset, the SavedModel answering like Keras in a
TensorFlow process that loads only tensorflow-text's op libraries, and 2 replicas
training like 1."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import (
    finish_processes,
    frame_record,
    scalar_events,
    start_process,
    write_file,
)
from videotag.errors import ConfigError
from videotag.layers.text_transformer import backbone_tail, build_transformer_encoder
from videotag.training.adversarial import SplitModel, fgm_forward
from videotag.training.trainer import load_trained, train

RGB, AUDIO, LENGTH = 16, 8, 12
# words and characters of the records' titles, from which the preset's vocabulary is learned
WORDS = ["cat", "cats", "dog", "dogs", "playing", "music", "video", "the", "my", "funny"]
CHARS = list("我的猫视频跳舞小狗音乐")
CHECKED = ["我的猫视频", "The Cats are PLAYING music!", "我的Cat视频，dogs 跳舞", "",
           "Ω 鑫", "猫 " * 20]  # Chinese, English, mixed, empty, unknown, longer than L
# the three ops of tensorflow-text the tokenizer puts in a SavedModel, and the op
# libraries (targets of tensorflow_text:ops_lib, which TF Serving links) holding them
TEXT_OPS = {"CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"}
TEXT_OP_LIBRARIES = ["_normalize_ops.so", "_regex_split_ops.so", "_fast_wordpiece_tokenizer.so"]


def _title(rng):
    parts = list(rng.choice(WORDS, rng.integers(0, 4))) + list(rng.choice(CHARS, rng.integers(0, 5)))
    return " ".join(rng.permutation(parts)) if parts else ""


def _records(n, seed):
    rng = np.random.default_rng(seed)
    return [frame_record(f"v{seed}-{i}".encode(), (i % 4,), frames=int(rng.integers(2, 8)),
                         rgb_size=RGB, audio_size=AUDIO, seed=seed * 1000 + i, title=_title(rng))
            for i in range(n)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Shards with titles, and a BERT preset whose vocabulary is learned from them."""
    root = tmp_path_factory.mktemp("transformer")
    for s in range(2):
        write_file(root / f"train{s}.tfrecord", _records(16, s))
    write_file(root / "validate0.tfrecord", _records(8, 9))
    code, _, err = finish_processes([start_process([
        "tools/make_text_preset.py", f"--output_dir={root / 'preset'}",
        f"--data_pattern={root / 'train*.tfrecord'}", "--vocabulary_size=120", "--num_layers=1",
        "--num_heads=2", "--hidden_dim=8", "--intermediate_dim=16", "--max_sequence_length=16",
        "--dropout=0.0"])])[0]
    assert code == 0, err[-3000:]
    assert "a BERT preset with random weights" in err and "not a pretrained encoder" in err
    return root


def _overrides(preset, **more):
    base = {
        "data.num_classes": 4, "data.max_frames": 10, "data.feature_sizes": f"[{RGB}, {AUDIO}]",
        "data.length_buckets": "[]",
        "model.aggregators": "{rgb: {type: NEXTVLAD, cluster_size: 4, groups: 2}, "
                             "audio: {type: NEXTVLAD, cluster_size: 4, groups: 2}}",
        "model.text.max_length": LENGTH,
        "model.text.encoder": f"{{type: transformer, preset: '{preset}', output: textcnn, "
                              "textcnn: {windows: [2, 3], filters: 4, activation: tanh, "
                              "alignment: center}, dropout: 0.0, freeze: true}",
        "model.fusion": "{type: text_guided, hidden_size: 16, attention_units: 4, dropout: 0.0}",
        "train.batch_size": 8, "eval.batch_size": 8, "train.learning_rate": 0.01,
        "train.epochs": 1, "train.log_every_steps": 1, "train.fgm_alpha": 0.5,
    }
    base.update(more)
    return [f"{k}={v}" for k, v in base.items()]


def _config(preset, **more):
    return videotag.config.load("multimodal_transformer_demo", _overrides(preset, **more))


@pytest.fixture(scope="module")
def model(data):
    return videotag.build_model(_config(data / "preset"))


def _expected_ids(preset, titles, length):
    """[CLS] + keras-hub's own token ids (first L - 2) + [SEP], padded: by hand."""
    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(preset))
    eager = tokenizer(titles)  # keras-hub's Python path
    traced = tf.function(tokenizer)(tf.constant(titles)).to_list()  # its TensorFlow path
    assert [list(map(int, ids)) for ids in eager] == traced
    cls, sep, pad = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    rows = [[cls] + list(ids[:length - 2]) + [sep] for ids in traced]
    return np.array([row + [pad] * (length - len(row)) for row in rows], np.int32), tokenizer


def test_titles_are_tokenised_as_keras_hub_does(data, model):
    expected, tokenizer = _expected_ids(data / "preset", CHECKED, LENGTH)
    layer = model.get_layer("title_tokens")
    np.testing.assert_array_equal(layer(tf.constant(CHECKED)), expected)
    np.testing.assert_array_equal(tf.function(layer)(tf.constant(CHECKED)), expected)
    packed = keras_hub.models.TextClassifierPreprocessor.from_preset(
        str(data / "preset"), sequence_length=LENGTH)(tf.constant(CHECKED))
    np.testing.assert_array_equal(packed["token_ids"], expected)  # keras-hub's own packing
    # Chinese: one token per character; empty: [CLS] [SEP]; unknown: [UNK]
    assert [tokenizer.id_to_token(int(i)) for i in expected[0][1:6]] == list("我的猫视频")
    assert [tokenizer.id_to_token(int(i)) for i in expected[3][:3]] == ["[CLS]", "[SEP]", "[PAD]"]
    assert tokenizer.id_to_token(int(expected[4][1])) == "[UNK]"
    assert expected[5][-1] == tokenizer.token_to_id("[SEP]")  # truncated to L
    np.testing.assert_array_equal(model.get_layer("title_mask")(expected), expected != 0)


def _numpy_textcnn(sequence, lengths, convs):
    """seed 001's TextCNN (paddle sequence_conv_pool): windows centred on each real token
    (context start -(w // 2), zeros outside the title), tanh, max over the real tokens."""
    out = []
    for seq, n in zip(sequence, lengths):
        parts = []
        for conv in convs:
            kernel, bias = (np.asarray(w, np.float64) for w in conv.get_weights())
            w = kernel.shape[0]
            rows = []
            for t in range(n):
                acc = bias.copy()
                for j in range(w):
                    k = t - w // 2 + j
                    if 0 <= k < n:
                        acc += seq[k] @ kernel[j]
                rows.append(np.tanh(acc))
            parts.append(np.max(rows, axis=0))
        out.append(np.concatenate(parts))
    return np.array(out)


def test_the_encoder_computes_its_backbone(data, model):
    preset = str(data / "preset")
    ids = model.get_layer("title_tokens")(tf.constant(CHECKED)).numpy()
    mask = ids != 0
    backbone = keras_hub.models.Backbone.from_preset(preset)
    reference = backbone({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                          "padding_mask": mask.astype("int32")})
    embeddings = model.get_layer("title_embedding")(ids)
    np.testing.assert_array_equal(embeddings, backbone.token_embedding(ids))
    params = _config(data / "preset").model.text.encoder.params
    for output, expected in [("pooled", reference["pooled_output"]),
                             ("cls", reference["sequence_output"][:, 0])]:
        params.output = output
        encoder = build_transformer_encoder(params, "title_encoder")
        np.testing.assert_allclose(encoder(embeddings, mask), expected, rtol=1e-5, atol=1e-6)
    encoder = model.get_layer("title_encoder")  # textcnn
    expected = _numpy_textcnn(np.asarray(reference["sequence_output"], np.float64),
                              mask.sum(axis=1), encoder.textcnn.convs)
    np.testing.assert_allclose(encoder(embeddings, mask), expected, rtol=1e-4, atol=1e-5)


def test_fgm_moves_the_token_embeddings_of_real_tokens(data, model):
    rng = np.random.default_rng(0)
    inputs = {"rgb": rng.integers(0, 256, (3, 5, RGB), dtype=np.uint8),
              "audio": rng.integers(0, 256, (3, 5, AUDIO), dtype=np.uint8),
              "num_frames": np.array([5, 2, 3], np.int32), "title": np.array(CHECKED[:3])}
    split = SplitModel(model)
    assert "title_embedding" in split.perturbable
    cut = split.cut(inputs)
    for name, a in model(inputs).items():
        np.testing.assert_array_equal(split.outputs(cut)[name], a)

    def loss_fn(outputs):
        return tf.reduce_mean(outputs["tags"])

    _, _, deltas = fgm_forward(split, inputs, loss_fn, epsilon=0.5, training=False)
    delta = deltas["title_embedding"].numpy()
    mask = cut["title_mask"].numpy()
    assert np.abs(delta[~mask]).max() == 0  # padding does not move
    np.testing.assert_allclose(np.sqrt((delta ** 2).sum(axis=(1, 2))), 0.5, rtol=1e-5)


def test_the_keras_file_round_trip_answers_alike(data, model, tmp_path):
    rng = np.random.default_rng(1)
    inputs = {"rgb": rng.integers(0, 256, (len(CHECKED), 6, RGB), dtype=np.uint8),
              "audio": rng.integers(0, 256, (len(CHECKED), 6, AUDIO), dtype=np.uint8),
              "num_frames": np.arange(1, len(CHECKED) + 1, dtype=np.int32),
              "title": np.array(CHECKED)}
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("title_tokens").tokenizer.get_vocabulary() == \
        keras_hub.models.BertTokenizer.from_preset(str(data / "preset")).get_vocabulary()
    expected, answered = model(inputs), loaded(inputs)
    assert set(answered) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(answered[name], value, err_msg=name)


def test_a_fine_tuned_embedding_is_updated_with_its_dense_gradient(data):
    # titles repeat tokens ([CLS] in every row, 猫 twenty times): the embedding's gradient
    # rows must be summed before the norm and Adam's squares, as with several replicas
    from videotag.training.losses import weighted_loss
    from videotag.training.step import TrainStep
    from videotag.training.trainer import build_for_training

    cfg = _config(data / "preset", **{
        "model.text.encoder": f"{{type: transformer, preset: '{data / 'preset'}', "
                              "output: pooled, dropout: 0.0}", "train.fgm_alpha": 0.0})
    strategy = tf.distribute.get_strategy()
    model, optimizer = build_for_training(cfg, strategy)
    rng = np.random.default_rng(3)
    n = len(CHECKED)
    inputs = {"rgb": tf.constant(rng.integers(0, 256, (n, 5, RGB), dtype=np.uint8)),
              "audio": tf.constant(rng.integers(0, 256, (n, 5, AUDIO), dtype=np.uint8)),
              "num_frames": tf.constant(np.full(n, 5, np.int32)), "title": tf.constant(CHECKED)}
    targets = {"tags": tf.constant(np.eye(4, dtype=np.float32)[np.arange(n) % 4])}
    embedding = model.get_layer("title_embedding").embeddings
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weighted_loss(cfg, model(inputs, training=True), targets)) / n
    grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]
    dense = grads[[id(v) for v in model.trainable_variables].index(id(embedding))].numpy()
    before, rate = embedding.numpy(), float(optimizer.learning_rate)
    out = TrainStep(cfg, model, optimizer, strategy)((inputs, targets))
    np.testing.assert_allclose(float(out["grad_norm"]), float(tf.linalg.global_norm(grads)),
                               rtol=1e-4)
    # Adam's first step: -rate * g / (|g| + epsilon / sqrt(1 - beta_2)), g the summed rows
    epsilon = optimizer.epsilon / np.sqrt(1 - optimizer.beta_2)
    expected = before - rate * dense / (np.abs(dense) + epsilon)
    # where |g| is near epsilon the update follows rounding noise of g: left out
    clear = np.abs(dense) > 1e-4
    tokenizer = model.get_layer("title_tokens").tokenizer
    assert all(clear[tokenizer.token_to_id(t)].any() for t in ("[CLS]", "猫"))
    np.testing.assert_allclose(embedding.numpy()[clear], expected[clear], rtol=1e-4, atol=1e-7)


def _preset_weights(preset):
    backbone = keras_hub.models.Backbone.from_preset(str(preset))
    tail, _ = backbone_tail(backbone)
    return backbone.token_embedding.get_weights(), tail.get_weights()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One epoch (4 steps) of a frozen encoder: textcnn, text-guided fusion, FGM,
    bfloat16, a checkpoint after step 2; then its copy of the preset is removed."""
    root = tmp_path_factory.mktemp("trained")
    preset = root / "preset"
    shutil.copytree(data / "preset", preset)
    cfg = videotag.config.load("multimodal_transformer_demo", _overrides(preset, **{
        "train.mixed_precision": "mixed_bfloat16", "train.checkpoint_every_steps": 2,
        "data.train_data_pattern": data / "train*.tfrecord"}))
    train(cfg, str(root / "run"), verbose=False)
    step2 = root / "run" / "checkpoints" / "ckpt-000000002"
    _, after_two_steps = load_trained(str(root / "run"), checkpoint=str(step2))
    frozen = _preset_weights(preset)
    shutil.rmtree(preset)
    return root, after_two_steps.get_weights(), frozen


def test_a_frozen_encoder_keeps_its_weights_while_the_rest_trains(trained):
    root, early, (token_embedding, transformer) = trained
    summary = json.loads((root / "run" / "metrics.json").read_text())["summary"]
    assert summary["steps"] == 4 and np.isfinite(summary["final_loss"])
    events = scalar_events(root / "run" / "logs" / "train")
    assert all(v > 0 for _, v in events["adversarial_loss"])
    model = keras.saving.load_model(root / "run" / "model.keras")  # no preset needed
    embedding = model.get_layer("title_embedding")
    tail = model.get_layer("title_encoder").transformer
    assert len(tail.weights) == len(transformer) > 0
    by_id = {id(w): value for w, value in zip(model.weights, early)}
    for weight, value in zip(embedding.weights + tail.weights, token_embedding + transformer):
        np.testing.assert_array_equal(weight.numpy(), value)  # after 4 steps
        np.testing.assert_array_equal(by_id[id(weight)], value)  # after 2 steps
    frozen = {id(w) for w in embedding.weights + tail.weights}
    trainable = [w for w in model.weights if w.trainable and id(w) not in frozen]
    still = [w.path for w in trainable if np.array_equal(w.numpy(), by_id[id(w)])]
    assert not still and any("textcnn" in w.path for w in trainable)


SERVE = textwrap.dedent("""
    import json, sys
    for name in ("videotag", "keras", "keras_hub", "tensorflow_text", "tests"):
        sys.modules[name] = None  # TensorFlow and tensorflow-text's op libraries alone
    import numpy as np, tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    job = json.load(open(sys.argv[1]))
    graph = saved_model_pb2.SavedModel.FromString(open(job["model"] + "/saved_model.pb", "rb").read())
    ops = {n.op for g in graph.meta_graphs for n in g.graph_def.node}
    ops |= {n.op for g in graph.meta_graphs for f in g.graph_def.library.function for n in f.node_def}
    unknown = sorted(o for o in ops if op_def_registry.get(o) is None)
    for library in job["libraries"]:
        tf.load_op_library(library)
    loaded = tf.saved_model.load(job["model"])
    records = [r.numpy() for r in tf.data.TFRecordDataset(job["records"])]
    served = loaded.signatures["serving_default"](example_bytes=tf.constant(records))
    dense = loaded.signatures["predict_dense"](**{k: tf.constant(v if k != "title" else
        np.array([t.encode() for t in v], object), dtype=None)
        for k, v in np.load(job["dense"], allow_pickle=True).items()})
    print(json.dumps({"unknown_ops": unknown,
                      "records": {k: v.numpy().tolist() for k, v in served.items()
                                  if v.dtype != tf.string},
                      "dense": {k: v.numpy().tolist() for k, v in dense.items()
                                if v.dtype != tf.string}}))
""")


def test_the_saved_model_answers_like_keras_with_tensorflow_text_ops_alone(trained):
    from videotag.export import export_saved_model

    root = trained[0]
    cfg, keras_model = load_trained(str(root / "run"))  # model.keras, the preset gone
    export = export_saved_model(keras_model, cfg, str(root / "exports"), name="mm",
                                save_keras=False)
    titles = CHECKED[:4] + [None]
    rng = np.random.default_rng(5)
    videos = [(rng.integers(0, 256, (n, RGB), dtype=np.uint8),
               rng.integers(0, 256, (n, AUDIO), dtype=np.uint8)) for n in (3, 7, 1, 12, 4)]
    records = [frame_record(f"s{i}".encode(), rgb=r, audio=a, title=t, rgb_size=RGB,
                            audio_size=AUDIO) for i, ((r, a), t) in enumerate(zip(videos, titles))]
    steps = max(len(r) for r, _ in videos)
    dense = {"rgb": np.zeros((5, steps, RGB), np.uint8), "audio": np.zeros((5, steps, AUDIO), np.uint8),
             "num_frames": np.array([min(len(r), 10) for r, _ in videos], np.int32),
             "title": np.array([t or "" for t in titles])}
    for i, (r, a) in enumerate(videos):
        dense["rgb"][i, :len(r)], dense["audio"][i, :len(a)] = r, a
    np.savez(root / "dense.npz", **dense)
    library_dir = Path(__import__("tensorflow_text").__file__).parent / "python" / "ops"
    job = {"model": str(export), "records": write_file(root / "serve.tfrecord", records),
           "dense": str(root / "dense.npz"),
           "libraries": [str(library_dir / name) for name in TEXT_OP_LIBRARIES]}
    (root / "job.json").write_text(json.dumps(job))
    (root / "serve.py").write_text(SERVE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    serve = subprocess.Popen([sys.executable, str(root / "serve.py"), str(root / "job.json")],
                             cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    # `videotag predict` on the SavedModel registers tensorflow-text's ops itself
    predict = start_process(["tools/predict.py", f"--saved_model={export}", "--format=jsonl",
                             f"--input_data_pattern={job['records']}", "--top_k=4",
                             f"--output_file={root / 'predicted.jsonl'}"])
    (code, out, err), (predict_code, _, predict_err) = finish_processes([serve, predict])
    assert code == 0, err[-3000:]
    assert predict_code == 0, predict_err[-3000:]
    served = json.loads(out.strip().splitlines()[-1])
    assert set(served["unknown_ops"]) == TEXT_OPS
    inputs = {k: (v[:, :10] if k in ("rgb", "audio") else v) for k, v in dense.items()}
    expected = keras_model(inputs)
    predicted = [json.loads(line) for line in (root / "predicted.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predicted] == [f"s{i}" for i in range(5)]
    np.testing.assert_allclose([[t["probability"] for t in p["tags"]] for p in predicted],
                               np.sort(expected["tags"].numpy(), axis=1)[:, ::-1][:, :4],
                               rtol=1e-4, atol=1e-5)
    for kind in ("records", "dense"):
        np.testing.assert_allclose(served[kind]["embedding"], expected["embedding"],
                                   rtol=1e-5, atol=1e-5)
        top = np.sort(expected["tags"].numpy(), axis=1)[:, ::-1][:, :4]
        np.testing.assert_allclose(served[kind]["predictions"], top, rtol=1e-5, atol=1e-6)


def test_two_replicas_train_like_one_with_per_layer_learning_rates(data, tmp_path):
    # fine-tuned at a tenth of the rate, FGM on, the pooled output, gated fusion
    overrides = _overrides(data / "preset", **{
        "model.text.encoder": f"{{type: transformer, preset: '{data / 'preset'}', "
                              "output: pooled, dropout: 0.0}",
        "model.fusion": "{type: gated, hidden_size: 16, dropout: 0.0}",
        "train.lr_multipliers": "{title_embedding: 0.1, title_encoder/transformer: 0.1}"})
    procs = [start_process(["tools/train.py", "--model_name=MULTIMODAL",
                            "--config=multimodal_transformer_demo", f"--model_dir={tmp_path / kind}",
                            f"--train_data_pattern={data / 'train*.tfrecord'}",
                            f"--distribution={kind}", "--logical_cpus=2",
                            *[f"--override={o}" for o in overrides]])
             for kind in ("none", "mirrored")]
    for code, _, err in finish_processes(procs, timeout=600):
        assert code == 0, err[-3000:]
    one, two = (scalar_events(tmp_path / k / "logs" / "train") for k in ("none", "mirrored"))
    for tag in ("loss", "adversarial_loss", "grad_norm"):
        assert [s for s, _ in one[tag]] == [s for s, _ in two[tag]] == [1, 2, 3, 4]
        np.testing.assert_allclose([v for _, v in two[tag]], [v for _, v in one[tag]],
                                   rtol=1e-5, err_msg=tag)
    _, model_one = load_trained(str(tmp_path / "none"))
    _, model_two = load_trained(str(tmp_path / "mirrored"))
    for weight, a, b in zip(model_one.weights, model_one.get_weights(), model_two.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4, err_msg=weight.path)


@pytest.mark.parametrize("override, message", [
    ("model.text.encoder.preset=''", "config key 'model.text.encoder.preset' is empty"),
    ("model.text.encoder.preset=/no/such/folder",
     "config key 'model.text.encoder.preset' names a preset folder that does not exist"),
    ("model.text.max_length=40", "config key 'model.text.max_length' is 40, more than the 16 "
                                 "positions of the backbone"),
    ("model.text.pretrained_embeddings=vectors.txt",
     "'model.text.pretrained_embeddings' is set, but the transformer encoder takes"),
    ("model.text.encoder.output=mean", "config key 'model.text.encoder.output' is 'mean'"),
    ("train.lr_multipliers={title_encoder/bert*: 0.1}",
     "config key 'train.lr_multipliers.title_encoder/bert\\*' has the pattern"),
])
def test_config_errors_name_the_key(data, override, message):
    with pytest.raises(ConfigError, match=message):
        cfg = videotag.config.load("multimodal_transformer_demo",
                                   _overrides(data / "preset") + [override])
        from videotag.training.trainer import build_for_training

        build_for_training(cfg, tf.distribute.get_strategy())


def test_without_keras_hub_the_message_says_what_to_install(monkeypatch):
    from videotag.layers.text_transformer import keras_hub as require

    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ConfigError, match=r"needs keras-hub: pip install 'videotag\[text\]'"):
        require()


@pytest.mark.parametrize("fusion, policy", [("concat_se", "mixed_float16"),
                                            ("gated", "mixed_bfloat16"),
                                            ("text_guided", "float32")])
def test_every_fusion_and_precision_reads_the_encoded_title(data, fusion, policy):
    # the same frames with another title give another video vector, and the encoder's
    # own weights (fine-tuned here) receive a gradient through the fusion
    params = "{type: %s, hidden_size: 16, dropout: 0.0%s}" % (
        fusion, ", attention_units: 4" if fusion == "text_guided" else "")
    # seed 001's TextCNN over the sequence: a random encoder's pooled vector varies
    # with the title by about 1e-5 only, below what bfloat16 resolves
    encoder = ("{type: transformer, preset: '%s', output: textcnn, textcnn: {windows: [2, 3], "
               "filters: 4}, dropout: 0.0, freeze: false}" % (data / "preset"))
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = videotag.build_model(_config(data / "preset", **{
            "model.fusion": params, "model.text.encoder": encoder}))
        rng = np.random.default_rng(2)
        frames = {"rgb": rng.integers(0, 256, (2, 5, RGB), dtype=np.uint8),
                  "audio": rng.integers(0, 256, (2, 5, AUDIO), dtype=np.uint8),
                  "num_frames": np.array([5, 3], np.int32)}
        with tf.GradientTape() as tape:
            first = model({**frames, "title": np.array(CHECKED[:2])})
            loss = tf.reduce_sum(tf.cast(first["embedding"], tf.float32))
        second = model({**frames, "title": np.array(CHECKED[2:4])})
        encoder_vars = [v for v in model.trainable_variables if "title_encoder" in v.path]
        grads = tape.gradient(loss, encoder_vars)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    vectors = [np.asarray(out["embedding"], np.float32) for out in (first, second)]
    assert np.isfinite(vectors[0]).all() and np.isfinite(np.asarray(first["tags"], np.float32)).all()
    assert np.abs(vectors[0] - vectors[1]).max() > 0
    assert encoder_vars and any(float(tf.reduce_max(tf.abs(g))) > 0
                                for g in grads if g is not None)
