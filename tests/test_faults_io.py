"""Faults of inputs and outputs, each made real in a `videotag` process of its own: bad
data (empty shards, frames stored as floats or of two values, a label file of the
wrong size), outputs that cannot be written (a file in the way, a full disk: a small
tmpfs where the machine allows mounting one, else a file size limit). Each checks the
message, the exit status and what is on disk afterwards."""

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

import videotag
from tests.helpers import (
    REPO,
    bytes_feature,
    finish_processes,
    frame_record,
    int64_feature,
    start_process,
    tiny_config,
    write_file,
)
from videotag.export import export_saved_model

RGB, AUDIO = 16, 8


def _floats(n):
    return tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * n))


def float_frames_record(video_id=b"floaty"):
    """A record whose rgb frames are float lists instead of bytes."""
    return tf.train.SequenceExample(
        context=tf.train.Features(feature={"id": bytes_feature(video_id),
                                           "labels": int64_feature(1)}),
        feature_lists=tf.train.FeatureLists(feature_list={
            "rgb": tf.train.FeatureList(feature=[_floats(RGB)] * 2),
            "audio": tf.train.FeatureList(feature=[bytes_feature(bytes(AUDIO))] * 2)}),
    ).SerializeToString()


def two_values_record(video_id=b"twice"):
    """A record whose audio frame 1 holds two values (the training parse fails on it)."""
    example = tf.train.SequenceExample.FromString(frame_record(
        video_id, (1,), rgb_size=RGB, audio_size=AUDIO, frames=3))
    example.feature_lists.feature_list["audio"].feature[1].bytes_list.value.append(bytes(AUDIO))
    return example.SerializeToString()


def good(n, start=0):
    return [frame_record(f"v{i}".encode(), (i % 10,), rgb_size=RGB, audio_size=AUDIO, frames=3,
                         seed=i) for i in range(start, start + n)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A model directory and an export of a tiny model (10 classes, 16+8 bytes per
    frame), its label file, and shards: good, with a float-frames record, empty."""
    root = tmp_path_factory.mktemp("faults")
    labels = root / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(10)))
    cfg = tiny_config(**{"data.feature_sizes": f"[{RGB}, {AUDIO}]",
                         "data.label_file": str(labels)})
    model = videotag.build_model(cfg)
    model_dir = root / "model"
    model_dir.mkdir()
    cfg.save(model_dir / "config.yaml")
    model.save(model_dir / "model.keras")
    exported = export_saved_model(model, cfg, str(root / "exports"), save_keras=False)
    shards = root / "shards"
    shards.mkdir()
    write_file(shards / "good.tfrecord", good(40))
    write_file(shards / "many.tfrecord", good(1500))
    write_file(shards / "floats.tfrecord", good(3) + [float_frames_record()] + good(3, 3))
    write_file(shards / "twovalues.tfrecord", good(3) + [two_values_record()] + good(3, 3))
    for i in range(2):
        (shards / f"empty-{i}.tfrecord").write_bytes(b"")
    return {"root": root, "cfg": cfg, "labels": labels, "model_dir": str(model_dir),
            "saved_model": exported, "shards": shards}


def videotag_process(*args, limit_bytes=None):
    """Starts `python -m videotag *args`; with `limit_bytes` no file it writes may grow
    beyond that (the file size limit: a write past it fails, as on a full disk)."""
    if limit_bytes is None:
        return start_process(["-m", "videotag", *map(str, args)])

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "videotag", *map(str, args)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit)


def error_line(result):
    """The `error: ...` line of a finished process, checking exit status 1 and that no
    traceback was printed."""
    code, _, err = result
    assert code == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of `size` mounted at `path` (None when this machine does not allow it)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)


def test_bad_inputs_stop_before_the_work_with_one_line(world, tmp_path):
    shards = world["shards"]
    short = tmp_path / "short.txt"
    short.write_text("a\nb\nc\n")
    model_dirs = [tmp_path / f"run{i}" for i in range(3)]
    train = ["train", "--model_name=NEXTVLAD", "--override", f"data.feature_sizes=[{RGB}, {AUDIO}]",
             "--override", "data.num_classes=10", "--override", "model.input.normalization=none"]
    procs = [
        videotag_process(*train, f"--model_dir={model_dirs[0]}",
                         f"--train_data_pattern={shards}/empty-*.tfrecord"),
        videotag_process(*train, f"--model_dir={model_dirs[1]}",
                         f"--train_data_pattern={shards}/good.tfrecord",
                         "--override", f"data.label_file={short}"),
        videotag_process(*train, f"--model_dir={model_dirs[2]}",
                         f"--train_data_pattern={shards}/nothing-*.tfrecord"),
        videotag_process("predict", f"--model_dir={world['model_dir']}",
                         f"--input_data_pattern={shards}/floats.tfrecord",
                         f"--output_file={tmp_path}/pred.csv"),
        videotag_process("predict", f"--saved_model={world['saved_model']}",
                         f"--input_data_pattern={shards}/floats.tfrecord",
                         f"--output_file={tmp_path}/pred_saved.csv"),
        # found by the training parse itself (the frames parsed dense, no type check)
        videotag_process(*train, f"--model_dir={tmp_path}/two_values",
                         f"--train_data_pattern={shards}/twovalues.tfrecord",
                         "--override", "train.eval_before_training=false"),
    ]
    empty, short_labels, no_files, floats, floats_served, two_values = finish_processes(procs)
    assert error_line(empty) == (
        f"error: the 2 file(s) matching the data pattern '{shards}/empty-*.tfrecord' are all "
        f"empty: there are no records to read (e.g. {shards}/empty-0.tfrecord)")
    assert error_line(short_labels) == (
        f"error: the label file {short} defines 3 classes (ids 0-2) but data.num_classes is 10: "
        "set data.num_classes=3, or 0 to take it from the label file, or give the label file "
        "of this data")
    assert error_line(no_files) == (
        f"error: no files match the data pattern '{shards}/nothing-*.tfrecord'")
    for run in model_dirs:  # found before anything was made
        assert not run.exists()
    where = f"{shards}/floats.tfrecord: record 3 (id floaty): feature list rgb: frame 0 holds " \
            "float values, expected bytes"
    assert error_line(floats) == (
        f"error: bad record: {where} (set data.on_bad_record=skip to drop and count such "
        "records)")
    assert error_line(floats_served) == f"error: {where} (one value of {RGB} bytes per frame)"
    assert error_line(two_values) == (
        f"error: bad record: {shards}/twovalues.tfrecord: record 3 (id twice): feature list "
        "audio: frame 1 holds 2 values, expected one (set data.on_bad_record=skip to drop and "
        "count such records)")
    assert not (tmp_path / "two_values" / "model.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.txt", "two_values"]


def test_skipped_wrong_types_and_outputs_in_new_or_blocked_folders(world, tmp_path):
    shards = world["shards"]
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way\n")
    procs = [
        videotag_process("predict", f"--model_dir={world['model_dir']}", "--on_bad_record=skip",
                         f"--input_data_pattern={shards}/floats.tfrecord",
                         f"--output_file={tmp_path}/new/deeper/pred.csv"),
        videotag_process("predict", f"--model_dir={world['model_dir']}",
                         f"--input_data_pattern={shards}/good.tfrecord",
                         f"--output_file={blocker}/pred.csv"),
        videotag_process("embed", f"--saved_model={world['saved_model']}",
                         f"--input_data_pattern={shards}/good.tfrecord",
                         f"--output={blocker}/sub/emb"),
        videotag_process("eval", f"--model_dir={world['model_dir']}",
                         f"--eval_data_pattern={shards}/good.tfrecord",
                         f"--report={blocker}/eval.json"),
        videotag_process("export", f"--model_dir={world['model_dir']}",
                         f"--export_dir={blocker}/exports"),
    ]
    skipped, *blocked = finish_processes(procs)
    code, _, err = skipped
    assert code == 0, err[-3000:]
    assert "prediction input: skipped 1 bad records (1 wrong type)" in err
    rows = (tmp_path / "new" / "deeper" / "pred.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["v0", "v1", "v2", "v3", "v4", "v5"]
    whats = ["predictions file", "embeddings file", "report", "export folder"]
    tails = [f"{blocker}/pred.csv", f"{blocker}/sub/emb.npy", f"{blocker}/eval.json",
             f"{blocker}/exports"]
    for result, what, tail in zip(blocked, whats, tails):
        reason = (f"{blocker} is a file, not a folder" if what != "embeddings file" else
                  f"its folder {blocker}/sub: a file is in the way of a folder of the path")
        if what == "export folder":
            reason = "a file is in the way of a folder of the path"
        assert error_line(result) == f"error: cannot write the {what} {tail}: {reason}"
    assert blocker.read_text() == "in the way\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "new"]


def test_a_full_disk_stops_with_the_path_and_keeps_the_previous_files(world, tmp_path):
    shards = world["shards"]
    with small_disk(tmp_path / "disk", "64k") as disk:
        out = disk or tmp_path / "disk"
        limit = None if disk else 64 << 10
        previous = {"pred.csv": "VideoId,LabelConfidencePairs\nold,1 0.5\n",
                    "emb.ids.txt": "old\n"}
        for name, text in previous.items():
            (out / name).write_text(text)
        procs = [
            videotag_process("predict", f"--model_dir={world['model_dir']}", "--top_k=10",
                             f"--input_data_pattern={shards}/many.tfrecord",
                             f"--output_file={out}/pred.csv", limit_bytes=limit),
            videotag_process("embed", f"--saved_model={world['saved_model']}",
                             f"--input_data_pattern={shards}/many.tfrecord",
                             f"--output={out}/emb", "--format=npy,tfrecord", limit_bytes=limit),
            videotag_process("export", f"--model_dir={world['model_dir']}",
                             f"--export_dir={out}/exports", limit_bytes=limit),
            videotag_process("make-demo-videos", f"--output_dir={out}/videos",
                             "--num_videos=3", limit_bytes=limit),
        ]
        pred, emb, export, videos = finish_processes(procs)
        full = "no space left on the device" if disk else "the file size limit was reached"
        assert error_line(pred) == f"error: cannot write the predictions file {out}/pred.csv: {full}"
        assert error_line(emb).startswith(f"error: cannot write the embeddings file {out}/emb.")
        assert error_line(emb).endswith(full)
        if disk:  # the space needed is known before the export starts
            assert error_line(export).startswith(
                f"error: not enough space for the export {out}/exports: it needs about ")
        else:
            assert error_line(export).startswith(f"error: cannot write the export {out}/exports/")
        assert error_line(videos).startswith(f"error: cannot write the video {out}/videos/demo0")
        assert error_line(videos).endswith(full)
        for name, text in previous.items():
            assert (out / name).read_text() == text
        left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
        assert [p for p in left if ".tmp" in p] == []
        assert not (out / "emb.npy").exists() and not (out / "emb.tfrecord").exists()
        assert not list((out / "exports").rglob("saved_model.pb"))



def test_an_index_that_cannot_be_written_leaves_the_previous_one(tmp_path):
    """build-index past the file size limit (its own process): one line, exit 1, the
    previous index and its description as they were, no temporary file."""
    from tests.test_similar_index import clustered
    from videotag.retrieval import load_vectors, write_embeddings
    from videotag.retrieval.index import IndexSettings, index_for

    vectors = clustered(500, 8, clusters=5, seed=3)
    prefix = tmp_path / "emb"
    write_embeddings([([f"v{i}" for i in range(500)], vectors)], str(prefix), ["npy"],
                     verbose=False)
    index_for(load_vectors(str(prefix)), str(prefix), IndexSettings("hnsw"), lambda _: None)
    index = tmp_path / "emb.hnsw.faiss"
    assert index.stat().st_size > 100_000
    write_embeddings([([f"v{i}" for i in range(400)], vectors[:400])], str(prefix), ["npy"],
                     verbose=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (result,) = finish_processes([videotag_process(
        "build-index", f"--embeddings={prefix}", "--index=hnsw", limit_bytes=40_000)])
    assert error_line(result) == (
        f"error: cannot write the faiss index {index}: the file size limit was reached")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

def test_the_model_file_write_removes_what_stopped_writes_left(tmp_path):
    """A run stopped in the middle of writing model.keras (its stop timeout ended the
    process) left `.model.keras.tmp-<pid>.keras`: the next write of that file removes
    such leftovers of other processes and nothing else."""
    import keras

    from videotag.training.trainer import save_model_file

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    left = [tmp_path / ".model.keras.tmp-1.keras", tmp_path / ".model.keras.tmp-4242.keras"]
    kept = [tmp_path / ".other.keras.tmp-1.keras", tmp_path / "model.keras.notes"]
    for path in left + kept:
        path.write_bytes(b"half a file")
    save_model_file(model, str(tmp_path / "model.keras"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model.keras", *(p.name for p in kept)])
    restored = keras.models.load_model(tmp_path / "model.keras")
    for a, b in zip(restored.get_weights(), model.get_weights(), strict=True):
        assert (a == b).all()
