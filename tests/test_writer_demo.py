"""Tests of videotag.data.writer (YT8M record building) and videotag.data.demo."""

import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from videotag.data import demo, schema
from videotag.data.writer import (
    RecordWriter,
    frame_example,
    video_example,
    write_records,
)


def _frames(rng, n, size):
    return rng.integers(0, 256, (n, size), dtype=np.uint8)


def _records(path):
    return list(tf.data.TFRecordDataset(path).as_numpy_iterator())


# ---------------------------------------------------------------- writer


def test_frame_example_round_trip():
    rng = np.random.default_rng(1)
    rgb, audio = _frames(rng, 5, 1024), _frames(rng, 4, 128)
    example = frame_example("vid-1", [3, 0, 17], {"rgb": rgb, "audio": audio},
                            title="Fahrrad 自行车", category=2)
    context, sequence = tf.io.parse_single_sequence_example(
        example.SerializeToString(),
        context_features={
            "id": tf.io.FixedLenFeature([], tf.string),
            "labels": tf.io.VarLenFeature(tf.int64),
            "title": tf.io.FixedLenFeature([], tf.string),
            "category": tf.io.FixedLenFeature([], tf.int64),
        },
        sequence_features={
            "rgb": tf.io.FixedLenSequenceFeature([], tf.string),
            "audio": tf.io.FixedLenSequenceFeature([], tf.string),
        },
    )
    assert context["id"].numpy() == b"vid-1"
    assert context["labels"].values.numpy().tolist() == [3, 0, 17]
    assert context["title"].numpy().decode("utf-8") == "Fahrrad 自行车"
    assert context["category"].numpy() == 2
    for name, frames in (("rgb", rgb), ("audio", audio)):
        decoded = tf.io.decode_raw(sequence[name], tf.uint8).numpy()
        np.testing.assert_array_equal(decoded, frames)


def test_frame_example_id_key_and_empty_labels():
    example = frame_example(b"abc", [], {"rgb": np.zeros((2, 8), np.uint8)},
                            id_key="video_id")
    context, _ = tf.io.parse_single_sequence_example(
        example.SerializeToString(),
        context_features={"video_id": tf.io.FixedLenFeature([], tf.string),
                          "labels": tf.io.VarLenFeature(tf.int64)},
    )
    assert context["video_id"].numpy() == b"abc"
    assert context["labels"].values.numpy().size == 0
    assert "title" not in example.context.feature
    assert "category" not in example.context.feature


def test_video_example_round_trip():
    rng = np.random.default_rng(2)
    mean_rgb = rng.uniform(-2, 2, 1024).astype(np.float32)
    mean_audio = rng.uniform(-2, 2, 128)
    example = video_example("v2", np.array([5, 9]),
                            {"mean_rgb": mean_rgb, "mean_audio": mean_audio},
                            title="t", category=0)
    parsed = tf.io.parse_single_example(
        example.SerializeToString(),
        {
            "id": tf.io.FixedLenFeature([], tf.string),
            "labels": tf.io.VarLenFeature(tf.int64),
            "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
            "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
            "title": tf.io.FixedLenFeature([], tf.string),
            "category": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    assert parsed["id"].numpy() == b"v2"
    assert parsed["labels"].values.numpy().tolist() == [5, 9]
    np.testing.assert_array_equal(parsed["mean_rgb"].numpy(), mean_rgb)
    np.testing.assert_allclose(parsed["mean_audio"].numpy(), mean_audio, rtol=1e-6)
    assert parsed["title"].numpy() == b"t" and parsed["category"].numpy() == 0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"features": {"rgb": np.zeros((2, 4), np.float32)}}, TypeError),
        ({"features": {"rgb": [[1, 2]]}}, TypeError),
        ({"features": {"rgb": np.zeros(4, np.uint8)}}, ValueError),
        ({"features": {"rgb": np.zeros((2, 3, 4), np.uint8)}}, ValueError),
        ({"features": [np.zeros((2, 4), np.uint8)]}, TypeError),
        ({"labels": [1, -2]}, ValueError),
        ({"labels": [1.5]}, TypeError),
        ({"labels": "12"}, TypeError),
        ({"video_id": 7}, TypeError),
        ({"title": 3}, TypeError),
        ({"category": -1}, ValueError),
        ({"category": "a"}, TypeError),
    ],
)
def test_frame_example_bad_inputs(kwargs, error):
    args = {"video_id": "x", "labels": [1],
            "features": {"rgb": np.zeros((2, 4), np.uint8)}}
    args.update(kwargs)
    with pytest.raises(error):
        frame_example(**args)


def test_video_example_bad_inputs():
    with pytest.raises(ValueError):
        video_example("x", [1], {"mean_rgb": np.zeros((2, 4), np.float32)})
    with pytest.raises(TypeError):
        video_example("x", [1], {"mean_rgb": np.array(["a", "b"])})


def test_record_writer_shards_round_robin(tmp_path):
    examples = [frame_example(f"v{i}", [i], {"rgb": np.full((1, 4), i, np.uint8)})
                for i in range(7)]
    with RecordWriter(tmp_path / "out" / "train", num_shards=3) as writer:
        for i, example in enumerate(examples):
            writer.write(example if i % 2 else example.SerializeToString())
    assert writer.count == 7
    expected = [str(tmp_path / "out" / f"train-{i:05d}-of-00003.tfrecord")
                for i in range(3)]
    assert writer.paths == expected
    names = [os.path.basename(p) for p in expected]
    assert sorted(os.listdir(tmp_path / "out")) == names
    assert [len(_records(p)) for p in expected] == [3, 2, 2]
    first = tf.train.SequenceExample.FromString(_records(expected[1])[0])
    assert first.context.feature["id"].bytes_list.value[0] == b"v1"
    with pytest.raises(ValueError):
        writer.write(examples[0])


def test_record_writer_paths_and_write_records(tmp_path):
    paths = [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]
    with RecordWriter(paths) as writer:
        for i in range(5):
            writer.write(str(i).encode())
    assert [_records(p) for p in paths] == [[b"0", b"2", b"4"], [b"1", b"3"]]
    assert write_records(tmp_path / "one.tfrecord", [b"x", b"y"]) == 2
    assert _records(str(tmp_path / "one.tfrecord")) == [b"x", b"y"]
    with pytest.raises(ValueError):
        RecordWriter(paths, num_shards=3)
    with pytest.raises(ValueError):
        RecordWriter(tmp_path / "p", num_shards=0)
    with pytest.raises(TypeError):
        RecordWriter(42)
    with RecordWriter(tmp_path / "c") as writer, pytest.raises(TypeError):
        writer.write("a str is not a record")


def test_record_writer_failure_leaves_no_shard(tmp_path):
    with pytest.raises(RuntimeError):
        with RecordWriter(tmp_path / "train", num_shards=2) as writer:
            writer.write(b"record")
            assert len(os.listdir(tmp_path)) == 2  # temporary names only
            assert not glob.glob(str(tmp_path / "*.tfrecord"))
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- demo data


def _load(pattern):
    """Ids, labels, frame counts and mean-pooled dequantized [rgb, audio] features."""
    ids, labels, lengths, audio_lengths, pooled = [], [], [], [], []
    for path in sorted(glob.glob(pattern)):
        for record in _records(path):
            ex = tf.train.SequenceExample.FromString(record)
            lists = ex.feature_lists.feature_list
            frames = {}
            for name, size in (("rgb", 1024), ("audio", 128)):
                data = b"".join(f.bytes_list.value[0] for f in lists[name].feature)
                frames[name] = np.frombuffer(data, np.uint8).reshape(-1, size)
            n = min(len(frames["rgb"]), len(frames["audio"]), 300)
            pooled.append(np.concatenate(
                [schema.dequantize(frames[k][:n]).mean(0) for k in ("rgb", "audio")]))
            ids.append(ex.context.feature["id"].bytes_list.value[0].decode())
            labels.append(list(ex.context.feature["labels"].int64_list.value))
            lengths.append(len(frames["rgb"]))
            audio_lengths.append(len(frames["audio"]))
    return (ids, labels, np.array(lengths), np.array(audio_lengths),
            np.array(pooled, np.float64))


def _multi_hot(labels, num_classes):
    out = np.zeros((len(labels), num_classes))
    for i, labs in enumerate(labels):
        out[i, labs] = 1.0
    return out


@pytest.fixture(scope="module")
def demo_medium(tmp_path_factory):
    """A 1500/500-video demo dataset, loaded (big enough for a linear probe)."""
    data = demo.generate(str(tmp_path_factory.mktemp("demo")), 1500, 500, seed=0,
                         num_shards=2)
    return data, _load(data.train_pattern), _load(data.eval_pattern)


def test_demo_files_and_vocabulary(demo_medium):
    data, train, evaluation = demo_medium
    names = demo.read_vocabulary(demo.VOCABULARY)
    assert 30 <= len(names) <= 50 and data.num_classes == len(names)
    assert demo.read_vocabulary(data.label_file) == names
    assert sorted(os.path.basename(p) for p in glob.glob(data.train_pattern)) == [
        "train0000.tfrecord", "train0001.tfrecord"]
    assert len(glob.glob(data.eval_pattern)) == 2
    assert (data.num_train, data.num_eval) == (1500, 500)
    assert len(train[0]) == 1500 and len(evaluation[0]) == 500
    assert "demo-train-000123" in train[0] and len(set(train[0])) == 1500
    assert all(i.startswith("demo-validate-") for i in evaluation[0])


def test_demo_lengths(demo_medium):
    _, train, evaluation = demo_medium
    for _, _, lengths, audio_lengths, _ in (train, evaluation):
        assert lengths.min() >= 1 and (lengths <= 3).sum() >= 3
        assert (lengths > 300).sum() >= 1 and lengths.max() <= 360
        assert 30 <= lengths.mean() <= 60
        assert np.all(audio_lengths <= lengths) and np.all(audio_lengths >= 1)
        assert np.mean(audio_lengths == lengths) > 0.9


def test_demo_labels_and_prior(demo_medium):
    data, train, _ = demo_medium
    labels = train[1]
    counts = np.array([len(labs) for labs in labels])
    assert counts.min() >= 1 and counts.max() <= 4
    assert all(len(set(labs)) == len(labs) for labs in labels)
    assert all(0 <= x < data.num_classes for labs in labels for x in labs)
    assert np.mean(counts <= 2) > 0.6 and np.mean(counts == 4) > 0.02
    freq = _multi_hot(labels, data.num_classes).sum(0)
    assert freq.min() >= 5  # every class is learnable
    assert freq.max() >= 8 * np.median(freq)  # a few common, many rare classes


def test_demo_is_learnable_but_not_trivial(demo_medium):
    from videotag.evaluation import gap

    data, (_, y_train, _, _, x_train), (_, y_eval, _, _, x_eval) = demo_medium
    y_train = _multi_hot(y_train, data.num_classes)
    y_eval = _multi_hot(y_eval, data.num_classes)
    prior_gap = gap(np.tile(y_train.mean(0), (len(y_eval), 1)), y_eval, top_k=20)

    mean = x_train.mean(0)
    a = np.c_[x_train - mean, np.ones(len(x_train))]
    weights = np.linalg.solve(a.T @ a + 300.0 * np.eye(a.shape[1]), a.T @ y_train)
    probe_gap = gap(np.c_[x_eval - mean, np.ones(len(x_eval))] @ weights, y_eval,
                    top_k=20)
    assert prior_gap < 0.3
    assert probe_gap >= prior_gap + 0.3
    assert probe_gap <= 0.9


def test_demo_is_deterministic(tmp_path):
    a = demo.generate(str(tmp_path / "a"), 300, 100, seed=3, num_shards=2)
    b = demo.generate(str(tmp_path / "b"), 300, 100, seed=3, num_shards=2)
    files = sorted(os.listdir(a.root))
    assert files == sorted(os.listdir(b.root))
    assert len(files) == 7  # 2 + 2 shards, vocabulary.csv, segment_label_ids.csv, demo.json
    for name in files:
        with open(os.path.join(a.root, name), "rb") as fa, \
                open(os.path.join(b.root, name), "rb") as fb:
            assert fa.read() == fb.read(), name
    c = demo.generate(str(tmp_path / "c"), 300, 100, seed=4, num_shards=2)
    with open(os.path.join(a.root, "train0000.tfrecord"), "rb") as fa, \
            open(os.path.join(c.root, "train0000.tfrecord"), "rb") as fc:
        assert fa.read() != fc.read()


def test_ensure_demo_data_reuses_and_regenerates(tmp_path, monkeypatch, capsys):
    root = str(tmp_path / "demo")
    first = demo.ensure_demo_data(root, num_train=300, num_eval=100, num_shards=2)
    assert "generating demo data (400 videos)" in capsys.readouterr().err
    assert first.root == root
    assert first.label_file == os.path.join(root, "vocabulary.csv")
    assert first.train_pattern == os.path.join(root, "train*.tfrecord")
    mtimes = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(root, "*"))}

    calls = []
    real_generate = demo.generate
    monkeypatch.setattr(demo, "generate", lambda *a, **k: calls.append(a) or
                        real_generate(*a, **k))
    again = demo.ensure_demo_data(root, num_train=300, num_eval=100, num_shards=2)
    assert again == first and calls == []
    assert capsys.readouterr().err == ""
    assert {p: os.stat(p).st_mtime_ns for p in mtimes} == mtimes

    # Other parameters: regenerated in place of the old data, nothing left over.
    other = demo.ensure_demo_data(root, num_train=200, num_eval=100, num_shards=2,
                                  verbose=False)
    assert len(calls) == 1 and other.num_train == 200
    with open(os.path.join(root, demo.MANIFEST)) as f:
        assert json.load(f)["num_train"] == 200
    assert os.listdir(tmp_path) == ["demo"]


def test_ensure_demo_data_interrupted_run_is_not_reused(tmp_path, monkeypatch):
    root = str(tmp_path / "demo")
    demo.ensure_demo_data(root, num_train=200, num_eval=100, num_shards=2,
                          verbose=False)
    with open(os.path.join(root, demo.MANIFEST)) as f:
        before = f.read()

    def killed(world, split, *args):
        if split == "validate":
            raise KeyboardInterrupt
        return real_write_split(world, split, *args)

    real_write_split = demo._write_split
    monkeypatch.setattr(demo, "_write_split", killed)
    with pytest.raises(KeyboardInterrupt):
        demo.ensure_demo_data(root, num_train=300, num_eval=100, num_shards=2,
                              verbose=False)
    with open(os.path.join(root, demo.MANIFEST)) as f:
        assert f.read() == before  # the old complete data is untouched
    monkeypatch.undo()
    data = demo.ensure_demo_data(root, num_train=300, num_eval=100, num_shards=2,
                                 verbose=False)
    assert data.num_train == 300
    assert os.listdir(tmp_path) == ["demo"]  # the half-written folder is cleaned up


def test_demo_data_goes_to_the_given_folder_else_the_checkout_else_the_user_cache(
        tmp_path, monkeypatch):
    checkout = Path(__file__).resolve().parent.parent
    monkeypatch.delenv(demo.DEMO_DIR_ENV, raising=False)
    assert demo.source_checkout() == checkout  # the tests run videotag from the checkout
    assert demo.default_root() == str(checkout / "data" / "demo_generated")
    monkeypatch.setenv(demo.DEMO_DIR_ENV, str(tmp_path / "mine"))
    assert demo.default_root() == str(tmp_path / "mine")
    # an installed package (tests/test_install.py runs one): the user cache
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert demo.user_cache_root() == str(tmp_path / "home" / ".cache" / "videotag" / "demo")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored: XDG paths are absolute
    assert demo.user_cache_root() == str(tmp_path / "home" / ".cache" / "videotag" / "demo")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert demo.user_cache_root() == str(tmp_path / "cache" / "videotag" / "demo")
