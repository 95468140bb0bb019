"""The one record parser: the exact features of a batch, every rule and its message,
the pipeline around it (chunks, skip mode, file order), data_errors(), and the parser
saved alone and run in a fresh process where videotag cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import (
    NUM_CLASSES,
    bytes_feature,
    frame_record,
    int64_feature,
    tiny_config,
    write_file,
)
from videotag.data import (
    PARSE_REASONS,
    RecordParser,
    SkipCounter,
    data_errors,
    decode_frames,
    make_dataset,
    translate_error,
)
from videotag.data.vocab import title_dataset
from videotag.errors import DataError

RNG = np.random.default_rng(3)


def _frames(n, size=1024):
    return RNG.integers(0, 256, (n, size), dtype=np.uint8)


def _config(**overrides):
    return tiny_config(**{"data.max_frames": 5, "data.use_title": True,
                          "data.num_categories": 5, **overrides})


def _parse(cfg, records, **kw):
    names = tf.constant([f"record {i}" for i in range(len(records))])
    return RecordParser(cfg.data, **kw).parse(tf.constant(records), names)


def _decoded(parsed, name, size):
    steps = tf.reduce_max(parsed.features["num_frames"])
    return decode_frames(parsed.features[name], steps, size).numpy()


def _edit(record, edit):
    """A record changed by `edit(example)` on its tf.train.SequenceExample."""
    example = tf.train.SequenceExample.FromString(record)
    edit(example)
    return example.SerializeToString()


def test_a_batch_parses_exactly():
    cfg = _config()
    rgb = [_frames(3), _frames(8), _frames(4)]
    audio = [_frames(3, 128), _frames(6, 128), _frames(2, 128)]
    records = [
        frame_record(b"a", (1, 7, 7), rgb=rgb[0], audio=audio[0], title="猫 cat", category=2),
        frame_record(b"b", (), rgb=rgb[1], audio=audio[1], title="", category=0),
        frame_record(b"c", (9,), rgb=rgb[2], audio=audio[2], category=4),  # no title
    ]
    parsed = _parse(cfg, records)
    f = parsed.features
    assert not parsed.bad.numpy().any() and parsed.errors.numpy().tolist() == [b""] * 3
    assert f["video_id"].numpy().tolist() == [b"a", b"b", b"c"]
    # the shorter of rgb and audio, at most max_frames (5)
    assert f["num_frames"].numpy().tolist() == [3, 5, 2]
    for name, size, lists in (("rgb", 1024, rgb), ("audio", 128, audio)):
        want = np.zeros((3, 5, size), np.uint8)
        for i, n in enumerate([3, 5, 2]):
            want[i, :n] = lists[i][:n]
        got = _decoded(parsed, name, size)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    labels = np.zeros((3, 10), np.float32)
    labels[0, [1, 7]] = 1
    labels[2, 9] = 1
    np.testing.assert_array_equal(f["labels"].numpy(), labels)
    assert [t.decode() for t in f["title"].numpy()] == ["猫 cat", "", ""]
    assert f["category"].numpy().tolist() == [2, 0, 4]


def _two_values(key):
    def edit(example):
        example.context.feature[key].bytes_list.value.append(b"second")
    return edit


def _two_categories(example):
    example.context.feature["category"].int64_list.value.append(1)


def _two_values_in_frame(example):
    example.feature_lists.feature_list["audio"].feature[1].bytes_list.value.append(b"x" * 128)


BAD = [  # (record at index 0, reasons, its message)
    (frame_record(b"x", id_key="video_id", title="t", category=1), {"missing_id"},
     "record 0 (no id): context key id is missing (the record has video_id: set data.id_key)"),
    (frame_record(None, title="t", category=1), {"missing_id"},
     "record 0 (no id): context key id is missing"),
    (_edit(frame_record(b"x", title="t", category=1), _two_values("id")), {"missing_id"},
     "record 0 (id x): context key id holds more than one value"),
    (frame_record(b"x", frames=0, title="t", category=1), {"no_frames"},
     "record 0 (id x): the video has no frames"),
    (frame_record(b"x", audio=_frames(0, 128), title="t", category=1), {"no_frames"},
     "record 0 (id x): feature list audio has no frames"),
    (frame_record(b"x", rgb=[*_frames(2), _frames(1, 1000)[0], *_frames(1)],
                  audio=_frames(4, 128), title="t", category=1), {"bad_frame_bytes"},
     "record 0 (id x): feature list rgb: frame 2 has 1000 bytes, expected 1024 "
     "(1 of 4 frames wrong)"),
    (_edit(frame_record(b"x", title="t", category=1), _two_values_in_frame), {"bad_frame_bytes"},
     "record 0 (id x): feature list audio: frame 1 holds 2 values, expected one"),
    (frame_record(b"x", (10, -1, 3, 11, 12, 13, 14), title="t", category=1),
     {"label_out_of_range"},
     "record 0 (id x): context key labels has ids [10 -1 11 12 13 ...] outside [0, 10)"),
    (frame_record(b"x", title=b"caf\xe9", category=1), {"bad_title"},
     "record 0 (id x): context key title is not valid UTF-8 text"),
    (_edit(frame_record(b"x", title="t", category=1), _two_values("title")), {"bad_title"},
     "record 0 (id x): context key title holds more than one value"),
    (frame_record(b"x", title="t"), {"bad_category"},
     "record 0 (id x): context key category is missing (data.num_categories is 5)"),
    (frame_record(b"x", title="t", category=5), {"bad_category"},
     "record 0 (id x): context key category is 5, outside [0, 5)"),
    (_edit(frame_record(b"x", title="t", category=1), _two_categories), {"bad_category"},
     "record 0 (id x): context key category holds more than one value"),
    (frame_record(None, (10,), frames=0, title=b"\xff"), {
        "missing_id", "no_frames", "label_out_of_range", "bad_title", "bad_category"},
     "record 0 (no id): context key id is missing; the video has no frames; context key "
     "labels has ids [10] outside [0, 10); context key title is not valid UTF-8 text; "
     "context key category is missing (data.num_categories is 5)"),
]


@pytest.mark.parametrize("record,reasons,message", BAD, ids=[m[16:60] for _, _, m in BAD])
def test_every_rule_and_its_message(record, reasons, message):
    """Each problem sets its reason and its message; the good record parsed beside it
    keeps its own features (a bad record does not shift another's frames)."""
    rgb, audio = _frames(4), _frames(4, 128)
    good = frame_record(b"good", (2,), rgb=rgb, audio=audio, title="fine", category=3)
    parsed = _parse(_config(), [record, good])
    bad = parsed.bad.numpy()
    assert {r for r, b in zip(PARSE_REASONS, bad[0]) if b} == reasons
    assert not bad[1].any()
    assert parsed.errors.numpy()[0].decode() == message
    assert parsed.errors.numpy()[1] == b""
    np.testing.assert_array_equal(_decoded(parsed, "rgb", 1024)[1, :4], rgb)
    np.testing.assert_array_equal(_decoded(parsed, "audio", 128)[1, :4], audio)


@pytest.mark.parametrize("pad", [False, True])
def test_frames_decoded_in_the_parse_are_the_bytes_decoded(pad):
    """frames="uint8" (the training pipeline's parse) gives each good record's frames
    as `decode_frames` of the bytes does, beside every bad record and with the same
    flags and messages; frames="none" gives the same without frame features."""
    cfg = _config(**{"data.pad_to_max_frames": pad})
    # rgb and audio of different lengths, one past max_frames (5)
    lengths = [(3, 3), (8, 6), (4, 2)]
    good = [frame_record(f"g{i}".encode(), (i,), rgb=_frames(r), audio=_frames(a, 128),
                         title="t", category=1) for i, (r, a) in enumerate(lengths)]
    records = good + [record for record, _, _ in BAD]
    as_bytes = _parse(cfg, records)
    steps = 5 if pad else tf.reduce_max(as_bytes.features["num_frames"])
    parsed = {frames: _parse(cfg, records, frames=frames) for frames in ("uint8", "none")}
    for frames, out in parsed.items():
        np.testing.assert_array_equal(out.bad.numpy(), as_bytes.bad.numpy())
        assert out.errors.numpy().tolist() == as_bytes.errors.numpy().tolist()
        kept = {k for k in as_bytes.features if k not in ("rgb", "audio")}
        assert set(out.features) == kept | ({"rgb", "audio"} if frames == "uint8" else set())
        for key in kept:
            np.testing.assert_array_equal(out.features[key].numpy(),
                                          as_bytes.features[key].numpy())
    for name, size in (("rgb", 1024), ("audio", 128)):
        want = decode_frames(as_bytes.features[name], steps, size).numpy()
        got = parsed["uint8"].features[name].numpy()
        assert got.dtype == np.uint8 and got.shape == want.shape
        np.testing.assert_array_equal(got[:len(good)], want[:len(good)])



@pytest.mark.parametrize("pad", [False, True])
def test_the_training_parse_without_type_checks_is_the_checking_parse(pad):
    """The training pipeline's parser (frames="uint8", check_types=False: the frames
    parsed dense and decoded in one op) gives what the checking parser gives, good and
    bad records alike: flags, messages, features, frames. A frame holding two values
    fails its batch instead, TensorFlow's message naming the record and the key."""
    cfg = _config(**{"data.pad_to_max_frames": pad})
    lengths = [(3, 3), (8, 6), (4, 2), (0, 0), (2, 0)]  # past max_frames (5), none, one none
    good = [frame_record(f"g{i}".encode(), (i,), rgb=_frames(r), audio=_frames(a, 128),
                         title="t", category=1) for i, (r, a) in enumerate(lengths)]
    two_values = [r for r, reasons, m in BAD if "holds 2 values" in m]
    assert len(two_values) == 1
    records = good + [record for record, _, _ in BAD if record is not two_values[0]]
    checked = _parse(cfg, records, frames="uint8")
    fast_parser = RecordParser(cfg.data, frames="uint8", check_types=False)
    assert fast_parser.dense and not RecordParser(cfg.data, frames="uint8").dense
    fast = _parse(cfg, records, frames="uint8", check_types=False)
    np.testing.assert_array_equal(fast.bad.numpy(), checked.bad.numpy())
    assert fast.errors.numpy().tolist() == checked.errors.numpy().tolist()
    assert fast.bad.numpy()[len(good):].any(axis=1).all()
    assert set(fast.features) == set(checked.features)
    for key, value in checked.features.items():
        got = fast.features[key].numpy()
        assert got.shape == value.numpy().shape and got.dtype == value.numpy().dtype, key
        # frames are exact for good records (a bad record's are not used)
        rows = slice(None) if key not in ("rgb", "audio") else slice(len(good))
        np.testing.assert_array_equal(got[rows], value.numpy()[rows], err_msg=key)
    # only the bad records differ past their frames: no padding changes a good record's
    assert fast.features["rgb"].numpy()[:len(good)].any()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Name: record 1, Key: audio, Index: 1\.\s+Number of values"):
        _parse(cfg, [good[0], two_values[0]], frames="uint8", check_types=False)

def test_served_models_read_neither_labels_nor_categories():
    record = frame_record(b"x", (99,), title="t")  # no category, label out of range
    parsed = _parse(_config(), [record], targets=False)
    assert not parsed.bad.numpy().any()
    assert set(parsed.features) == {"rgb", "audio", "num_frames", "video_id", "title"}
    titles = _parse(_config(), [record], features=[], title=True, targets=False)
    assert set(titles.features) == {"video_id", "title"}


def test_video_level_records():
    # a video-level model's config (data.record_type video, mean_rgb and mean_audio)
    cfg = videotag.config.load("logistic", [f"data.num_classes={NUM_CLASSES}"])
    rgb = RNG.normal(size=(2, 1024)).astype(np.float32)

    def record(vid, mean_rgb):
        feature = {"id": bytes_feature(vid), "labels": int64_feature(4),
                   "mean_rgb": tf.train.Feature(float_list=tf.train.FloatList(value=mean_rgb)),
                   "mean_audio": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * 128))}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    parsed = _parse(cfg, [record(b"a", rgb[0]), record(b"b", rgb[1][:7])])
    np.testing.assert_array_equal(parsed.features["mean_rgb"].numpy()[0], rgb[0])
    np.testing.assert_array_equal(parsed.features["mean_audio"].numpy(), np.full((2, 128), 0.5))
    assert parsed.errors.numpy().tolist() == [
        b"", b"record 1 (id b): feature mean_rgb has 7 values, expected 1024"]


def _shard(tmp_path, bad_at, count=150):
    """A shard of `count` records (more than two parse chunks); bad ones at `bad_at`."""
    records = [frame_record(f"v{i}".encode(), (i % 10,), frames=1 + i % 4, seed=i)
               for i in range(count)]
    for index, record in bad_at.items():
        records[index] = record
    return write_file(tmp_path / "many.tfrecord", records)


def test_a_bad_record_past_the_first_chunk_is_named(tmp_path):
    path = _shard(tmp_path, {100: frame_record(b"late", (10,))})
    with pytest.raises(DataError, match=r"many.tfrecord: record 100 \(id late\): context key "
                                        r"labels has ids \[10\] outside \[0, 10\)"):
        with data_errors([path]):
            list(make_dataset(tiny_config().data, path, 32, training=False))


def test_skip_mode_over_chunks_keeps_file_order(tmp_path):
    path = _shard(tmp_path, {3: frame_record(b"bad", frames=0),
                             70: frame_record(None), 140: frame_record(b"bad", (10,))})
    cfg = tiny_config(**{"data.on_bad_record": "skip"})
    counter = SkipCounter()
    batches = list(make_dataset(cfg.data, path, 32, training=False, bucket=False,
                                skip_counter=counter))
    ids = [v.decode() for b in batches for v in b["video_id"].numpy()]
    assert ids == [f"v{i}" for i in range(150) if i not in (3, 70, 140)]
    assert [int(b["num_frames"].shape[0]) for b in batches] == [32, 32, 32, 32, 19]
    assert counter.counts() == {"missing_id": 1, "no_frames": 1, "label_out_of_range": 1}
    for batch in batches:  # every video's frames are its own record's
        for vid, n, rgb in zip(batch["video_id"].numpy(), batch["num_frames"].numpy(),
                               batch["rgb"].numpy()):
            i = int(vid[1:])
            want = np.random.default_rng(i).integers(0, 256, (1 + i % 4, 1024), dtype=np.uint8)
            assert n == 1 + i % 4
            np.testing.assert_array_equal(rgb[:n], want)
            assert not rgb[n:].any()


def test_pad_to_max_frames(tmp_path):
    path = _shard(tmp_path, {}, count=5)
    cfg = tiny_config(**{"data.pad_to_max_frames": True})
    (batch,) = list(make_dataset(cfg.data, path, 8, training=False))
    assert batch["rgb"].shape == (5, 20, 1024) and batch["audio"].shape == (5, 20, 128)


def test_records_that_are_not_protocol_messages_are_named(tmp_path):
    path = write_file(tmp_path / "g.tfrecord", [frame_record(b"a"), frame_record(b"b"), b"garbage"])
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(make_dataset(tiny_config().data, path, 8, training=False))
    assert str(translate_error(info.value)) == (
        f"bad record: {path}: record 2: not a serialized SequenceExample")
    wrong_type = _edit(frame_record(b"c"), lambda e: e.context.feature["labels"].CopyFrom(
        bytes_feature(b"7")))
    path = write_file(tmp_path / "t.tfrecord", [frame_record(b"a"), wrong_type])
    with pytest.raises(DataError) as info:
        with data_errors():
            list(make_dataset(tiny_config().data, path, 8, training=False))
    assert str(info.value) == (
        f"bad record: {path}: record 1 (id c): context key labels holds bytes values, expected "
        "int64 (set data.on_bad_record=skip to drop and count such records)")
    # the training pipeline's dense frame parse fails at a frame of two values: the
    # record is read again and described in the checking parser's words
    two_values = _edit(frame_record(b"d"), _two_values_in_frame)
    path = write_file(tmp_path / "v.tfrecord", [frame_record(b"a"), two_values])
    with pytest.raises(DataError) as info:
        with data_errors():
            list(make_dataset(tiny_config().data, path, 8, training=True, seed=0))
    assert str(info.value) == (
        f"bad record: {path}: record 1 (id d): feature list audio: frame 1 holds 2 values, "
        "expected one (set data.on_bad_record=skip to drop and count such records)")
    (checked,) = _parse(tiny_config(), [two_values]).errors.numpy()
    assert checked.decode() == (
        "record 0 (id d): feature list audio: frame 1 holds 2 values, expected one")


def test_data_errors_passes_other_errors_on():
    with pytest.raises(tf.errors.ResourceExhaustedError):
        with data_errors():
            raise tf.errors.ResourceExhaustedError(None, None, "out of memory")
    with pytest.raises(DataError, match="data file not found"):
        with data_errors():
            tf.io.read_file("/nonexistent/shard.tfrecord").numpy()


def test_the_vocabulary_pass_sees_the_titles_the_model_sees(tmp_path):
    cfg = _config()
    path = write_file(tmp_path / "titles.tfrecord", [
        frame_record(b"a", title="猫 cat"), frame_record(b"b", title=b"caf\xe9"),
        frame_record(b"c"), _edit(frame_record(b"d", title="one"), _two_values("title"))])
    titles = [t.decode() for t in title_dataset(cfg.data, path).as_numpy_iterator()]
    assert titles == ["猫 cat", "", "", ""]


FRESH_SCRIPT = textwrap.dedent("""
    import json, sys
    for name in ("videotag", "keras", "tests"):
        sys.modules[name] = None  # none of these can be imported: TensorFlow alone must do
    import tensorflow as tf

    loaded = tf.saved_model.load(sys.argv[1])
    records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[2])]
    names = [f"record {i}" for i in range(len(records))]
    out = loaded.parse(tf.constant(records), tf.constant(names))
    print(json.dumps({k: (v.numpy().astype(bytes).tolist() if v.dtype == tf.string
                          else v.numpy().tolist()) for k, v in out.items()},
                     default=lambda b: b.decode("utf-8", "replace")))
""")


def test_the_saved_parser_runs_without_videotag(tmp_path):
    """The parser traced into a SavedModel alone gives, in a process where videotag
    cannot be imported, what it gives here."""
    cfg = _config()
    parser = RecordParser(cfg.data)

    def parse(records, names):
        parsed = parser.parse(records, names)
        steps = tf.reduce_max(tf.concat([parsed.features["num_frames"], [0]], 0))
        out = dict(parsed.features, bad=parsed.bad, errors=parsed.errors)
        for name, size in (("rgb", 1024), ("audio", 128)):
            out[name] = decode_frames(parsed.features[name], steps, size)
        return out

    module = tf.Module()
    module.parse = tf.function(parse, input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    tf.saved_model.save(module, str(tmp_path / "parser"))
    records = [record for record, _, _ in BAD]
    records += [frame_record(b"good", (1, 2), frames=7, title="猫", category=4)]
    path = write_file(tmp_path / "records.tfrecord", records)
    (tmp_path / "run.py").write_text(FRESH_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "parser"),
                           path], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    here = parse(tf.constant(records), tf.constant([f"record {i}" for i in range(len(records))]))
    assert set(fresh) == set(here)
    for key, value in here.items():
        value = value.numpy()
        if value.dtype == object:
            value = [v.decode("utf-8", "replace") for v in value.tolist()]
            assert fresh[key] == value, key
        else:
            np.testing.assert_array_equal(np.array(fresh[key]), value, err_msg=key)
    assert [e.split(": ", 1)[-1] for e in fresh["errors"][:-1]] == [
        m.split(": ", 1)[-1] for _, _, m in BAD]
    assert fresh["errors"][-1] == "" and fresh["num_frames"][-1] == 5
