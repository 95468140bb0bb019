"""`videotag validate-data`: every count of its report against the records the test
wrote (frames, labels, classes, bad records by reason, corrupt and empty shards), and
the command in its own process: exit status, text, JSON and PNG report."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (
    bytes_feature,
    finish_processes,
    frame_record,
    int64_feature,
    start_process,
    tiny_config,
    write_file,
)
from videotag.data.validation import validate_data
from videotag.data.validation_report import format_validation, validation_dict

RGB, AUDIO, CLASSES = 16, 8, 10


def float_frames_record(video_id):
    """A record whose rgb frames are float lists instead of bytes."""
    floats = tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * RGB))
    return tf.train.SequenceExample(
        context=tf.train.Features(feature={"id": bytes_feature(video_id),
                                           "labels": int64_feature(1)}),
        feature_lists=tf.train.FeatureLists(feature_list={
            "rgb": tf.train.FeatureList(feature=[floats] * 2),
            "audio": tf.train.FeatureList(feature=[bytes_feature(bytes(AUDIO))] * 2)}),
    ).SerializeToString()


def record(i, frames, labels, **kw):
    return frame_record(f"v{i}".encode(), labels, rgb_size=RGB, audio_size=AUDIO,
                        frames=frames, seed=i, **kw)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shards with known contents: a good one, one with three bad records, a
    truncated one and an empty one; and what a correct validation finds in them."""
    root = tmp_path_factory.mktemp("validate")
    rng = np.random.default_rng(7)
    good = []  # (frames, labels) of each good record
    for i in range(60):
        labels = tuple(sorted(rng.choice(CLASSES - 2, rng.integers(1, 4), replace=False)))
        good.append((int(rng.integers(1, 40)), labels))
    records = [record(i, f, l, title="a title" if i % 3 == 0 else None)
               for i, (f, l) in enumerate(good)]
    write_file(root / "good.tfrecord", records[:40])
    write_file(root / "bad.tfrecord", records[40:50] + [
        float_frames_record(b"floaty"),
        record(100, 3, (4, 12)),            # label 12 outside [0, 10)
        frame_record(None, (1,), rgb_size=RGB, audio_size=AUDIO),  # no id
    ])
    cut = write_file(root / "cut.tfrecord", records[50:])
    data = open(cut, "rb").read()
    (root / "cut.tfrecord").write_bytes(data[:-30])  # the last record is lost
    (root / "empty.tfrecord").write_bytes(b"")
    labels_file = root / "labels.txt"
    labels_file.write_text("".join(f"class {c}\n" for c in range(CLASSES)))
    kept = good[:59]  # the truncated shard loses its last record
    return {
        "root": root, "labels": labels_file, "kept": kept,
        "frames": sorted(f for f, _ in kept),
        "labels_per_video": sorted(len(l) for _, l in kept),
        "class_counts": np.bincount([c for _, l in kept for c in l], minlength=CLASSES),
        "titles": sum(1 for i in range(59) if i % 3 == 0),
    }


def test_every_count_matches_the_records_written(shards):
    root = shards["root"]
    cfg = tiny_config(**{"data.feature_sizes": f"[{RGB}, {AUDIO}]",
                         "data.label_file": str(shards["labels"]), "data.max_frames": 20})
    result = validate_data(cfg.data, f"{root}/*.tfrecord", examples=2, progress_seconds=0)
    assert (result.records, result.good, result.bad) == (62, 59, 3)
    assert result.reasons == {"missing_id": 1, "label_out_of_range": 1, "wrong_type": 1}
    assert result.examples["wrong_type"] == [
        f"{root}/bad.tfrecord: record 10 (id floaty): feature list rgb: frame 0 holds float "
        "values, expected bytes (one value of 16 bytes per frame)"]
    assert result.examples["label_out_of_range"][0].startswith(
        f"{root}/bad.tfrecord: record 11 (id v100): ")
    assert "[12]" in result.examples["label_out_of_range"][0]
    assert result.examples["missing_id"][0].startswith(f"{root}/bad.tfrecord: record 12")
    assert result.corrupt_shards == [(f"{root}/cut.tfrecord", 9)]
    assert result.empty_shards == [f"{root}/empty.tfrecord"]
    # every frame counted, not only the data.max_frames (20) a run keeps
    assert sorted(result.frames.tolist()) == shards["frames"]
    assert sorted(result.labels_per_video.tolist()) == shards["labels_per_video"]
    np.testing.assert_array_equal(result.class_counts, shards["class_counts"])
    assert result.titles == shards["titles"] and result.categories == 0
    assert not result.ok and result.notes == []
    text = format_validation(result)
    longer = sum(1 for f in shards["frames"] if f > 20)
    assert f"{longer} video(s) longer than data.max_frames (20)" in text
    assert f"{root}/cut.tfrecord: unreadable after record 8" in text
    assert text.splitlines()[-1] == "result: problems found"
    report = validation_dict(result)
    assert report["labels_per_video"] == {
        str(n): shards["labels_per_video"].count(n) for n in set(shards["labels_per_video"])}
    assert sum(report["frames_histogram"].values()) == 59
    # one chunk of 64 records: parsed without the type check, failed by the float
    # frames, parsed again with the types checked
    assert result.rechecked == 1


def test_only_the_chunk_with_a_wrong_type_is_checked_again_and_found_the_same(shards):
    """Chunks of 4 records: the one holding the float frames is parsed again with the
    types checked, the others are not, and everything is found as in one chunk."""
    root = shards["root"]
    cfg = tiny_config(**{"data.feature_sizes": f"[{RGB}, {AUDIO}]",
                         "data.label_file": str(shards["labels"])})
    small = validate_data(cfg.data, f"{root}/*.tfrecord", examples=2, progress_seconds=0,
                          chunk=4)
    assert small.rechecked == 1
    assert small.reasons == {"missing_id": 1, "label_out_of_range": 1, "wrong_type": 1}
    assert small.examples["label_out_of_range"][0].startswith(
        f"{root}/bad.tfrecord: record 11 (id v100): ")
    assert small.examples["missing_id"][0].startswith(f"{root}/bad.tfrecord: record 12")
    assert small.examples["wrong_type"] == [
        f"{root}/bad.tfrecord: record 10 (id floaty): feature list rgb: frame 0 holds float "
        "values, expected bytes (one value of 16 bytes per frame)"]
    assert (small.records, small.good, small.bad) == (62, 59, 3)
    assert small.corrupt_shards == [(f"{root}/cut.tfrecord", 9)]
    assert sorted(small.frames.tolist()) == shards["frames"]
    np.testing.assert_array_equal(small.class_counts, shards["class_counts"])
    assert (small.titles, small.categories) == (shards["titles"], 0)


def test_a_layout_other_than_the_config_is_named(shards):
    # the default sizes (1024 and 128 bytes) of the packaged config: every record bad
    cfg = tiny_config(**{"data.label_file": str(shards["labels"])})
    result = validate_data(cfg.data, f"{shards['root']}/good.tfrecord", progress_seconds=0)
    assert result.notes == ["feature rgb has 16 bytes per frame, data.feature_sizes says 1024",
                            "feature audio has 8 bytes per frame, data.feature_sizes says 128"]
    assert (result.records, result.bad, result.reasons) == (40, 40, {"bad_frame_bytes": 40})
    assert "  differs from the config: feature rgb has 16 bytes per frame" in \
        format_validation(result)


def test_the_command_writes_its_report_and_exits_1_on_problems(shards, tmp_path):
    root, labels = shards["root"], shards["labels"]
    sizes = ["--override", f"data.feature_sizes=[{RGB}, {AUDIO}]"]
    common = ["-m", "videotag", "validate-data", f"--label_file={labels}",
              "--override", f"data.num_classes={CLASSES}", "--progress_seconds=0"]
    report = tmp_path / "reports" / "all.json"
    procs = [
        start_process([*common, *sizes, f"--data_pattern={root}/*.tfrecord",
                       f"--report={report}"]),
        start_process([*common, *sizes, f"--data_pattern={root}/good.tfrecord"]),
    ]
    (code, out, err), (good_code, good_out, good_err) = finish_processes(procs)
    assert code == 1, err[-3000:]
    assert "Traceback" not in err
    assert "wrong_type: 1" in out and "corrupt or truncated shards" in out
    written = json.loads(report.read_text())
    assert (written["records"], written["good"], written["bad"], written["ok"]) == (62, 59, 3, False)
    assert [c["videos"] for c in written["classes"]] == shards["class_counts"].tolist()
    assert written["corrupt_shards"] == [{"file": f"{root}/cut.tfrecord", "records_read": 9}]
    png = tmp_path / "reports" / "all_histograms.png"
    image = tf.io.decode_png(png.read_bytes())
    assert image.shape[0] > 100 and image.shape[1] > 300
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "all.json", "all_histograms.png"]

    assert good_code == 0, good_err[-3000:]
    assert good_out.splitlines()[-1] == "result: every record is good"
    assert "validated 40 records in 1 shard(s)" in good_out



def test_the_command_shows_a_progress_line(shards):
    """With a tiny --progress_seconds the command writes its progress line on standard
    error (the shards make two chunks of records: a line after the second, with every
    record counted); with 0 it writes none."""
    root, labels = shards["root"], shards["labels"]
    common = ["-m", "videotag", "validate-data", f"--label_file={labels}",
              "--override", f"data.num_classes={CLASSES}",
              "--override", f"data.feature_sizes=[{RGB}, {AUDIO}]",
              f"--data_pattern={root}/*.tfrecord"]
    (code, out, err), (quiet_code, _, quiet_err) = finish_processes(
        [start_process([*common, "--progress_seconds=1e-9"]),
         start_process([*common, "--progress_seconds=0"])])
    assert (code, quiet_code) == (1, 1), err[-3000:]
    lines = re.findall(r"^  validated (\d+) videos \((\d+)/s\)$", err, re.MULTILINE)
    assert lines, err[-3000:]
    assert int(lines[-1][0]) == 62 and int(lines[-1][1]) > 0
    assert "validated 62 records" in out  # the report, on standard output
    assert not re.search(r"^  validated ", quiet_err, re.MULTILINE)
