"""The Beam pipelines on the DirectRunner with 2 worker processes, against the
single-machine tools on the same inputs: batch-extract (videos from
make_demo_videos, an undecodable one in the dead letters), batch-predict and
batch-embed (records of a tiny exported model: the same lines and embeddings; bad
and truncated records skipped into the dead letters, or stopping the run with the
previous output left as it was; a re-run's files replacing an earlier run's). The
pipelines run together, in one fixture: the DirectRunner's start-up is most of
their time.

`--direct_running_mode=multi_processing`: each worker is its own Python process, as
on a cluster, so the DoFns, the model handler and the settings cross a pickle and
every worker loads its own networks and SavedModel.
"""

import glob
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import finish_processes, frame_record, start_process, tiny_config, write_file
from videotag.extraction.synthetic import make_demo_videos

WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
TINY = ["--backbone=MobileNetV3Small", "--weights=random", "--audio_weights=random",
        "--override=image_size=32", "--override=feature_sizes=[16, 8]", "--override=seed=3"]


def _parse(path_glob):
    """{id: (labels, title, {feature: uint8 frames})} of frame records."""
    out = {}
    for raw in tf.data.TFRecordDataset(sorted(glob.glob(path_glob))):
        ex = tf.train.SequenceExample.FromString(raw.numpy())
        video_id = ex.context.feature["id"].bytes_list.value[0].decode()
        frames = {name: np.stack([np.frombuffer(f.bytes_list.value[0], np.uint8)
                                  for f in ex.feature_lists.feature_list[name].feature])
                  for name in ("rgb", "audio")}
        out[video_id] = (list(ex.context.feature["labels"].int64_list.value),
                         list(ex.context.feature["title"].bytes_list.value), frames)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """4 demo videos and an undecodable one, in a manifest."""
    root = tmp_path_factory.mktemp("videos")
    manifest = make_demo_videos(root / "videos", num_videos=4, width=64, height=48)
    (root / "videos" / "broken.mp4").write_bytes(os.urandom(3000))
    with open(manifest, "a", encoding="utf-8") as f:
        f.write("broken.mp4\tnot a video\tRed\n")
    return root, [f"--input={manifest}", f"--label_file={root / 'videos' / 'labels.txt'}",
                  *TINY]


def test_batch_extract_writes_the_records_of_extract_and_dead_letters_a_broken_video(
        videos, runs):
    tmp_path, _ = videos
    code, _, err = runs["extract"]
    assert code == 1 and "broken.mp4: cannot be opened as a video" in err, err[-2000:]
    code, _, err = runs["batch-extract"]
    assert code == 1, err[-3000:]  # like extract: a video failed
    assert "extracted 4 videos" in err and "1 failed" in err
    assert "DirectRunner, 2 workers (multi_processing)" in err
    assert err.strip().splitlines()[-1].startswith("error: 1 video(s) failed (dead letters in")
    (dead,) = [json.loads(line) for line in (tmp_path / "many" / "failed.jsonl").open()]
    broken = tmp_path / "videos" / "broken.mp4"
    assert dead["path"] == str(broken)
    assert dead["reason"].startswith(f"{broken}: cannot be opened as a video")
    one, many = _parse(str(tmp_path / "one" / "part-*.tfrecord")), _parse(
        str(tmp_path / "many" / "part-*.tfrecord"))
    assert sorted(one) == sorted(many) == [f"demo{i:03d}" for i in range(4)]
    for video_id, (labels, title, frames) in one.items():
        assert many[video_id][:2] == (labels, title) and labels and title
        for name in ("rgb", "audio"):  # the same networks, PCA and quantization
            np.testing.assert_array_equal(many[video_id][2][name], frames[name])
    summary = json.loads((tmp_path / "many" / "summary.json").read_text())
    assert summary["counts"]["videos_extracted"] == 4 and len(summary["failed"]) == 1
    assert summary["counts"]["frames"] == sum(len(f["rgb"]) for _, _, f in one.values())
    settings = (tmp_path / "many" / "extraction.yaml").read_text()
    assert settings == (tmp_path / "one" / "extraction.yaml").read_text()
    assert not list(tmp_path.glob(".many.staging-*"))  # committed, nothing left aside


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny model's export, 3 good shards and a shard with a bad and a cut record."""
    import videotag
    from videotag.export import export_saved_model

    root = tmp_path_factory.mktemp("served")
    cfg = tiny_config()
    exported = export_saved_model(videotag.build_model(cfg), cfg, str(root / "exports"))
    for s in range(3):
        write_file(root / f"good{s}.tfrecord", [
            frame_record(f"v{s}-{i}".encode(), labels=(i % 10,), seed=100 * s + i,
                         frames=1 + (7 * i) % 13) for i in range(9 + s)])
    bad = [frame_record(f"b-{i}".encode(), seed=50 + i, frames=3) for i in range(6)]
    bad.insert(2, frame_record(b"short", rgb_size=1000))
    write_file(root / "bad.tfrecord", bad)
    data = (root / "good0.tfrecord").read_bytes()
    (root / "cut.tfrecord").write_bytes(data[:len(data) - 100])  # its last record is cut
    return root, str(exported)


def _lines(prefix):
    return [line for path in sorted(glob.glob(f"{prefix}-*.jsonl"))
            for line in open(path, encoding="utf-8").read().splitlines()]


def _previous_run(prefix, shards):
    """Files of an earlier run of `prefix` (what a re-run must replace or keep)."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    for s in range(shards):
        with open(f"{prefix}-{s:05d}-of-{shards:05d}.jsonl", "w", encoding="utf-8") as f:
            f.write("earlier run\n")
    with open(f"{prefix}.summary.json", "w", encoding="utf-8") as f:
        f.write("{}\n")


@pytest.fixture(scope="module")
def runs(served, videos):
    """Every pipeline, started together (the DirectRunner's start-up is most of their
    time): extract fitting the PCA then batch-extract with it; batch-predict skipping
    bad records over an earlier 5-shard run, batch-predict stopping at a bad record
    over an earlier run (2 worker threads), batch-embed; with the single-machine
    predict and embed computed meanwhile. {name: (exit code, stdout, stderr)}."""
    root, exported = served
    video_root, common = videos
    single_extract = start_process([
        "tools/extract_features.py", *common, "--fit_pca", f"--pca_dir={video_root / 'pca'}",
        f"--output_dir={video_root / 'one'}", "--noprogress"])
    from videotag.inference import predict_from_saved_model, write_predictions_file
    from videotag.retrieval import embedding_batches, write_embeddings

    good = str(root / "good*.tfrecord")
    _previous_run(str(root / "out" / "pred"), 5)
    _previous_run(str(root / "kept" / "pred"), 2)
    procs = [
        start_process(["tools/batch_predict.py", f"--saved_model={exported}",
                       f"--input_data_pattern={good},{root / 'bad.tfrecord'},"
                       f"{root / 'cut.tfrecord'}", f"--output_prefix={root / 'out' / 'pred'}",
                       "--top_k=5", "--on_bad_record=skip", "--num_shards=3", *WORKERS]),
        start_process(["tools/batch_predict.py", f"--saved_model={exported}",
                       f"--input_data_pattern={root / 'bad.tfrecord'}",
                       f"--output_prefix={root / 'kept' / 'pred'}", "--num_shards=1",
                       "--direct_num_workers=2", "--direct_running_mode=multi_threading"]),
        start_process(["tools/batch_embed.py", f"--saved_model={exported}",
                       f"--input_data_pattern={good}", f"--output_prefix={root / 'emb'}",
                       *WORKERS])]
    write_predictions_file(predict_from_saved_model(exported, good, top_k=5),
                           str(root / "single.jsonl"), "jsonl", verbose=False)
    write_embeddings(embedding_batches(good, saved_model=exported), str(root / "single"),
                     ["tfrecord"], verbose=False)
    out = {"extract": finish_processes([single_extract], timeout=600)[0]}
    batch_extract = start_process([
        "tools/batch_extract.py", *common, f"--pca_dir={video_root / 'pca'}",
        f"--output_dir={video_root / 'many'}", *WORKERS])
    out.update(zip(["predict", "stopped", "embed", "batch-extract"],
                   finish_processes([*procs, batch_extract], timeout=900)))
    return out


def test_batch_predict_writes_the_lines_of_predict_and_skips_bad_records(served, runs):
    root, _ = served
    code, _, err = runs["predict"]
    assert code == 0, err[-3000:]
    assert "predicted 44 videos of 5 shard(s)" in err  # 30 good, 6 of bad, 8 of cut
    assert "skipped 1 bad record(s) and 1 corrupt shard(s)" in err
    want = {json.loads(line)["id"]: line
            for line in (root / "single.jsonl").read_text(encoding="utf-8").splitlines()}
    prefix = root / "out" / "pred"
    lines = _lines(prefix)
    # the earlier run's 5 shards are gone: one run's files only
    assert sorted(os.listdir(root / "out")) == [
        "pred-00000-of-00003.jsonl", "pred-00001-of-00003.jsonl", "pred-00002-of-00003.jsonl",
        "pred.failed.jsonl", "pred.summary.json"]
    # the cut shard is good0 but its last record: its 8 others come twice
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(
        list(want) + [f"b-{i}" for i in range(6)] + [f"v0-{i}" for i in range(8)])
    for line in want.values():  # each line exactly what `predict` writes
        assert line in lines
    dead = sorted((json.loads(line) for line in open(f"{prefix}.failed.jsonl")),
                  key=lambda d: d["path"])
    assert dead == [
        {"path": str(root / "bad.tfrecord"), "record": 2,
         "reason": f"{root / 'bad.tfrecord'}: record 2 (id short): feature list rgb: frame 0 "
                   "has 1000 bytes, expected 1024 (3 of 3 frames wrong)"},
        {"path": str(root / "cut.tfrecord"), "record": 8,
         "reason": "corrupt or truncated at record 8; the rest of this shard is skipped"}]
    summary = json.loads((root / "out" / "pred.summary.json").read_text())
    assert summary["runner"] == "DirectRunner, 2 workers (multi_processing)"


def test_batch_predict_stopped_by_a_bad_record_leaves_the_earlier_run(served, runs):
    # on_bad_record=error (the export's default): the run stops at the bad record and
    # the earlier output stays as it was (no mix of two runs)
    root, _ = served
    code, _, err = runs["stopped"]
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"error: bad record: {root / 'bad.tfrecord'}: record 2 (id short): feature list rgb: "
        "frame 0 has 1000 bytes, expected 1024 (3 of 3 frames wrong) (set "
        "data.on_bad_record=skip to drop and count such records)")
    assert sorted(os.listdir(root / "kept")) == [
        "pred-00000-of-00002.jsonl", "pred-00001-of-00002.jsonl", "pred.summary.json"]
    assert (root / "kept" / "pred-00000-of-00002.jsonl").read_text() == "earlier run\n"


def test_batch_embed_writes_the_embeddings_of_embed(served, runs):
    root, _ = served
    from videotag.retrieval.vectors import read_shards

    code, _, err = runs["embed"]
    assert code == 0, err[-3000:]
    want_ids, want = read_shards([str(root / "single.tfrecord")])
    got_ids, got = read_shards(sorted(glob.glob(str(root / "emb-*-of-*.tfrecord"))))
    assert sorted(got_ids) == sorted(want_ids) and len(got_ids) == 30
    order = [got_ids.index(video_id) for video_id in want_ids]
    np.testing.assert_allclose(got[order], want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_a_rerun_replaces_the_previous_files_and_never_a_foreign_folder(tmp_path):
    from videotag.beam.staging import StagedOutput
    from videotag.errors import DataError

    def run(target, kind, names, previous=(), owned=""):
        staged = StagedOutput(str(target), kind, owned=owned)
        for name in names:
            with open(staged.path(name), "w") as f:
                f.write(f"{staged.run_id}\n")
        return staged, staged.commit(list(previous))

    old = ["pred-00000-of-00003.jsonl", "pred-00001-of-00003.jsonl",
           "pred-00002-of-00003.jsonl", "pred.summary.json"]
    previous = ["pred-?????-of-?????.jsonl", "pred.summary.json"]
    (tmp_path / "keep.txt").write_text("not ours")
    run(tmp_path / "pred", "prefix", old, previous)
    staged, committed = run(tmp_path / "pred", "prefix",
                            ["pred-00000-of-00001.jsonl", "pred.summary.json"], previous)
    assert sorted(os.listdir(tmp_path)) == ["keep.txt", "pred-00000-of-00001.jsonl",
                                            "pred.summary.json"]
    assert {open(p).read() for p in committed} == {f"{staged.run_id}\n"}
    # a folder: swapped whole; a folder this command did not write is never replaced
    run(tmp_path / "features", "folder", ["part-0.tfrecord", "summary.json"], owned="summary.json")
    run(tmp_path / "features", "folder", ["part-1.tfrecord", "summary.json"], owned="summary.json")
    assert sorted(os.listdir(tmp_path / "features")) == ["part-1.tfrecord", "summary.json"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="holds files that this command did not write"):
        StagedOutput(str(tmp_path / "mine"), "folder", owned="summary.json")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    shutil.rmtree(tmp_path / "mine")
