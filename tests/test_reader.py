"""The YT8M reader against records built field by field (not via the project's writer)."""

import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import NUM_CLASSES, frame_record, tiny_config, write_file
from videotag.data import make_dataset, schema, translate_error
from videotag.data import SkipCounter
from videotag.errors import DataError


def _read_all(cfg, pattern, batch_size=8, **kw):
    return list(make_dataset(cfg.data, pattern, batch_size, training=False, **kw))


def test_dequantize_values():
    q = np.array([0, 1, 127, 128, 255], np.uint8)
    x = schema.dequantize(q)
    # x = q * 4/255 + 4/512 - 2
    np.testing.assert_allclose(x, q * (4 / 255) + (4 / 512 - 2), rtol=0, atol=1e-6)
    assert x[0] == pytest.approx(-2 + 4 / 512, abs=1e-6)
    assert x[-1] == pytest.approx(2 + 4 / 512, abs=1e-6)
    # quantize inverts dequantize on the codes, and clips outside [-2, 2]
    np.testing.assert_array_equal(schema.quantize(schema.dequantize(np.arange(256))), np.arange(256))
    np.testing.assert_array_equal(schema.quantize([-5.0, 5.0, 0.0]), [0, 255, 128])


def test_frame_records_parse_exactly(tmp_path):
    cfg = tiny_config()
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (4, 1024), dtype=np.uint8)
    audio = rng.integers(0, 256, (6, 128), dtype=np.uint8)  # longer audio: use the shorter
    path = write_file(tmp_path / "a.tfrecord", [
        frame_record(b"first", (3, 7), rgb=rgb, audio=audio),
        frame_record(b"second", (), frames=2, seed=2),
    ])
    (batch,) = _read_all(cfg, path)
    assert batch["video_id"].numpy().tolist() == [b"first", b"second"]
    assert batch["num_frames"].numpy().tolist() == [4, 2]
    assert batch["rgb"].dtype == tf.uint8 and batch["rgb"].shape == (2, 4, 1024)
    np.testing.assert_array_equal(batch["rgb"].numpy()[0], rgb)
    np.testing.assert_array_equal(batch["audio"].numpy()[0], audio[:4])
    np.testing.assert_array_equal(batch["rgb"].numpy()[1, 2:], 0)  # padding
    labels = batch["labels"].numpy()
    assert labels.shape == (2, 10)
    assert labels[0].nonzero()[0].tolist() == [3, 7] and labels[1].sum() == 0


def test_max_frames_truncates_and_configurable_id_key(tmp_path):
    cfg = tiny_config(**{"data.id_key": "video_id", "data.max_frames": 5})
    path = write_file(tmp_path / "a.tfrecord", [frame_record(b"long", frames=9, id_key="video_id")])
    (batch,) = _read_all(cfg, path)
    assert batch["num_frames"].numpy().tolist() == [5]
    assert batch["rgb"].shape[1] == 5
    assert batch["video_id"].numpy().tolist() == [b"long"]


def test_glob_over_shards(tmp_path):
    cfg = tiny_config()
    for s in range(3):
        write_file(tmp_path / f"train{s:04d}.tfrecord",
                   [frame_record(f"v{s}-{i}".encode(), seed=i) for i in range(5)])
    ids = [v for b in _read_all(cfg, str(tmp_path / "train*.tfrecord"), 4)
           for v in b["video_id"].numpy().tolist()]
    assert sorted(ids) == sorted(f"v{s}-{i}".encode() for s in range(3) for i in range(5))
    shuffled = make_dataset(cfg.data, str(tmp_path / "train*.tfrecord"), 4, training=True, seed=3)
    assert sum(int(b["num_frames"].shape[0]) for b in shuffled) == 15


def test_empty_glob_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no files match"):
        make_dataset(tiny_config().data, str(tmp_path / "nothing*.tfrecord"), 4, training=False)


BAD_CASES = [
    ("wrong id key", dict(id_key="video_id"), "context key id is missing.*video_id", "missing_id"),
    ("no id", dict(video_id=None), "context key id is missing", "missing_id"),
    ("label out of range", dict(labels=(2, 10)), r"labels.*\[10\] outside \[0, 10\)", "label_out_of_range"),
    ("negative label", dict(labels=(-1,)), r"labels.*\[-1\] outside", "label_out_of_range"),
    ("short frame", dict(rgb=np.zeros((2, 1000), np.uint8)), r"feature list rgb: frame 0 has 1000 bytes, expected 1024 \(2 of 2 frames wrong\)", "bad_frame_bytes"),
    ("no frames", dict(frames=0), "no frames", "no_frames"),
]


@pytest.mark.parametrize("name,kwargs,message,reason", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_record_stops_with_file_record_and_key(tmp_path, name, kwargs, message, reason):
    cfg = tiny_config()
    path = write_file(tmp_path / "shard.tfrecord",
                      [frame_record(b"good"), frame_record(**{"video_id": b"bad", **kwargs}), frame_record(b"good2")])
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _read_all(cfg, path)
    error = translate_error(info.value)
    assert isinstance(error, DataError)
    text = str(error)
    assert "shard.tfrecord: record 1" in text
    assert __import__("re").search(message, text), text


@pytest.mark.parametrize("name,kwargs,message,reason", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_skip_mode_drops_and_counts(tmp_path, name, kwargs, message, reason):
    cfg = tiny_config(**{"data.on_bad_record": "skip"})
    path = write_file(tmp_path / "shard.tfrecord",
                      [frame_record(b"good"), frame_record(**{"video_id": b"bad", **kwargs}), frame_record(b"good2")])
    counter = SkipCounter()
    ids = [v for b in _read_all(cfg, path, skip_counter=counter) for v in b["video_id"].numpy()]
    assert ids == [b"good", b"good2"]
    assert counter.counts() == {reason: 1}
    assert "skipped 1 bad records" in counter.summary()


def test_corrupt_shard_names_file_and_record(tmp_path):
    cfg = tiny_config()
    good = write_file(tmp_path / "train0000.tfrecord", [frame_record(b"a"), frame_record(b"b")])
    data = bytearray(open(good, "rb").read())
    bad_path = tmp_path / "train0001.tfrecord"
    # flip a byte inside the second record's payload: its CRC no longer matches
    data[-20] ^= 0xFF
    bad_path.write_bytes(bytes(data))
    files = [good, str(bad_path)]
    with pytest.raises(tf.errors.DataLossError) as info:
        _read_all(cfg, str(tmp_path / "train*.tfrecord"))
    error = translate_error(info.value, files)
    assert "train0001.tfrecord: record 1" in str(error) and "corrupt" in str(error)


def test_truncated_shard_is_reported(tmp_path):
    cfg = tiny_config()
    path = write_file(tmp_path / "t.tfrecord", [frame_record(b"a"), frame_record(b"b")])
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 100])
    with pytest.raises(tf.errors.OpError) as info:
        _read_all(cfg, path)
    error = translate_error(info.value, [path])
    assert error is not None and "t.tfrecord: record 1" in str(error)


def _video_record(video_id, labels, mean_rgb, mean_audio):
    feature = {
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video_id])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(labels))),
        "mean_rgb": tf.train.Feature(float_list=tf.train.FloatList(value=list(mean_rgb))),
        "mean_audio": tf.train.Feature(float_list=tf.train.FloatList(value=list(mean_audio))),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_video_level_records(tmp_path):
    # a video-level model's config (data.record_type video, mean_rgb and mean_audio)
    cfg = videotag.config.load("logistic", [f"data.num_classes={NUM_CLASSES}"])
    rng = np.random.default_rng(0)
    rgb, audio = rng.normal(size=1024).astype(np.float32), rng.normal(size=128).astype(np.float32)
    path = write_file(tmp_path / "v.tfrecord", [
        _video_record(b"a", (0, 9), rgb, audio),
        _video_record(b"b", (), rgb * 2, audio * 2),
    ])
    (batch,) = _read_all(cfg, path)
    np.testing.assert_array_equal(batch["mean_rgb"].numpy()[0], rgb)
    np.testing.assert_array_equal(batch["mean_audio"].numpy()[1], audio * 2)
    assert batch["labels"].numpy()[0].nonzero()[0].tolist() == [0, 9]
    assert "num_frames" not in batch

    bad = write_file(tmp_path / "w.tfrecord", [_video_record(b"c", (1,), rgb[:100], audio)])
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _read_all(cfg, bad)
    assert "w.tfrecord: record 0 (id c): feature mean_rgb has 100 values, expected 1024" in str(
        translate_error(info.value))


def test_length_buckets_group_similar_lengths_and_lose_nothing(tmp_path):
    cfg = tiny_config(**{"data.length_buckets": "[3, 8]", "data.max_frames": 20})
    lengths = [1, 15, 2, 9, 3, 16, 1, 8, 20, 2, 12, 4]
    path = write_file(tmp_path / "b.tfrecord",
                      [frame_record(f"v{i}".encode(), frames=n, seed=i) for i, n in enumerate(lengths)])
    batches = _read_all(cfg, path, batch_size=3)
    seen = {}
    for b in batches:
        n = b["num_frames"].numpy()
        bucket = [0 if x <= 3 else 1 if x <= 8 else 2 for x in n]
        assert len(set(bucket)) == 1, n  # one bucket per batch
        assert b["rgb"].shape[1] == n.max()  # padded to the batch's longest video only
        seen.update(zip(b["video_id"].numpy().tolist(), n.tolist()))
    assert seen == {f"v{i}".encode(): n for i, n in enumerate(lengths)}


def test_skip_mode_reads_corrupt_and_truncated_shards_up_to_the_damage(tmp_path, capfd):
    cfg = tiny_config(**{"data.on_bad_record": "skip"})
    write_file(tmp_path / "s0.tfrecord", [frame_record(f"a{i}".encode(), seed=i) for i in range(3)])
    good = write_file(tmp_path / "s1.tfrecord", [frame_record(f"b{i}".encode(), seed=i) for i in range(3)])
    data = open(good, "rb").read()
    corrupt = bytearray(data)
    corrupt[-20] ^= 0xFF  # inside the payload of the last record (b2)
    (tmp_path / "s1.tfrecord").write_bytes(bytes(corrupt))
    write_file(tmp_path / "s2.tfrecord", [frame_record(f"c{i}".encode(), seed=i) for i in range(3)])
    (tmp_path / "s2.tfrecord").write_bytes(open(tmp_path / "s2.tfrecord", "rb").read()[:-50])
    counter = SkipCounter()
    ids = sorted(v for b in _read_all(cfg, str(tmp_path / "s*.tfrecord"), skip_counter=counter)
                 for v in b["video_id"].numpy())
    # every readable record arrives; only the damaged tails are lost, and they are reported
    assert ids == [b"a0", b"a1", b"a2", b"b0", b"b1", b"c0", b"c1"]
    assert counter.counts() == {"corrupt_shard": 2}
    assert "2 corrupt shard(s)" in counter.summary()
    err = capfd.readouterr().err
    assert "s1.tfrecord is corrupt or truncated at record 2" in err
    assert "s2.tfrecord is corrupt or truncated at record 2" in err
