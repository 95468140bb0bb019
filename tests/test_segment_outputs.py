"""Segments end to end: a frame-level model trained on rated segments; `videotag eval
--segments` equal to the metric's definition on the model's own window scores;
`videotag predict --segments` (the Kaggle submission, scored again by `eval
--segments --submission`, and the timeline); `videotag timeline`; the
`predict_segments` signature in a fresh process that has TensorFlow alone."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import finish_processes, frame_record, start_process, tiny_config, \
    with_segments, write_file
from tests.test_segments import slow_segment_map
from videotag.evaluation.segment_scoring import run_segment_evaluation
from videotag.export import export_saved_model
from videotag.training import train
from videotag.training.trainer import load_trained

PROTOS = np.random.default_rng(11).integers(40, 216, (4, 1152))


def _record(i, seed):
    """A video whose 5-frame segments each show one class of a pair, (0, 1) or (2, 3),
    the pair the video's; each segment is rated positive for its class and negative
    for the other class of its pair. Every video shows both classes of its pair, so its
    labels name both: they do not say which segment shows which."""
    rng = np.random.default_rng(seed * 1000 + i)
    n = int(rng.integers(6, 24))
    both = np.concatenate([[0, 1], rng.integers(0, 2, (n + 4) // 5 - 2)])
    shown = 2 * (i % 2) + rng.permutation(both)
    x = np.clip(PROTOS[shown.repeat(5)[:n]] + rng.normal(0, 40, (n, 1152)), 0, 255)
    x = x.astype(np.uint8)
    labels, starts, scores = [], [], []
    for j, c in enumerate(shown.tolist()):
        labels += [c, c ^ 1]
        starts += [5 * j, 5 * j]
        scores += [1.0, 0.0]
    record = frame_record(f"v{seed}-{i:02d}".encode(), sorted(set(shown.tolist())),
                          rgb=x[:, :1024], audio=x[:, 1024:])
    return with_segments(record, labels, starts, scores)


def _config(root, **overrides):
    return tiny_config(**{"data.num_classes": 4, "data.max_frames": 30,
                          "data.label_file": str(root / "labels.txt"),
                          "data.segment_label_file": str(root / "segment_label_ids.csv"),
                          "data.train_data_pattern": str(root / "train.tfrecord"),
                          "data.eval_data_pattern": str(root / "eval.tfrecord"),
                          "train.epochs": 2, "train.learning_rate": 0.01,
                          "train.tensorboard": False, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("segments")
    labels = root / "labels.txt"
    labels.write_text("Guitar\nDrum\nPiano\nSinging\n")
    segment_classes = root / "segment_label_ids.csv"
    segment_classes.write_text("Index\n0\n1\n2\n3\n")
    write_file(root / "train.tfrecord", [_record(i, 0) for i in range(48)])
    eval_path = write_file(root / "eval.tfrecord", [_record(i, 1) for i in range(16)])
    cfg = _config(root, **{"data.segment_labels": True, "train.eval_before_training": True,
                           "export.top_k": 2})
    summary = train(cfg, str(root / "run"), verbose=False)
    return root, summary, eval_path


def _window_probabilities(model, path, classes=4):
    """Every segment's tag probabilities from the Keras model on NumPy windows:
    (probabilities [N, C], video ids [N], starts [N], ratings [N, C])."""
    probs, ids, starts, ratings = [], [], [], []
    for raw in tf.data.TFRecordDataset(path):
        example = tf.train.SequenceExample.FromString(raw.numpy())
        ctx, lists = example.context.feature, example.feature_lists.feature_list
        frames = {name: np.frombuffer(b"".join(f.bytes_list.value[0] for f in
                                               lists[name].feature), np.uint8).reshape(-1, size)
                  for name, size in (("rgb", 1024), ("audio", 128))}
        n = len(frames["rgb"])
        rated = {(t, c): s for c, t, s in zip(ctx["segment_labels"].int64_list.value,
                                              ctx["segment_start_times"].int64_list.value,
                                              ctx["segment_scores"].float_list.value)}
        for start in range(0, n, 5):
            window = {k: v[None, start:start + 5] for k, v in frames.items()}
            window["num_frames"] = np.array([len(window["rgb"][0])], np.int32)
            out = model(window, training=False)["tags"]
            probs.append(keras.ops.convert_to_numpy(out)[0])
            ids.append(ctx["id"].bytes_list.value[0])
            starts.append(start)
            ratings.append([int(rated[(start, c)]) if (start, c) in rated else -1
                            for c in range(classes)])
    return np.array(probs), np.array(ids), np.array(starts), np.array(ratings, np.int8)


def test_training_on_segments_and_the_segment_metric(trained):
    root, summary, eval_path = trained
    assert summary["validation"]["segment_map"] > summary["untrained_validation"]["segment_map"]
    assert summary["validation"]["segment_map"] > 0.9  # segments of 4 clear classes
    cfg, model = load_trained(str(root / "run"))
    probs, ids, starts, ratings = _window_probabilities(model, eval_path)
    keys = [(i, s) for i, s in zip(ids, starts)]
    # what the evaluator ranked (top_n covers every segment): the scores of the Keras
    # model on each window, the ratings of the records
    evaluation = run_segment_evaluation(model, cfg, verbose=False)
    classes, scores, kept_ids, kept_starts, kept_ratings = evaluation.ranking.ranked()
    assert len(classes) == 4 * len(keys)
    seen = np.zeros_like(probs)
    for c, p, i, t, r in zip(classes, scores, kept_ids, kept_starts, kept_ratings):
        row = keys.index((i, t))
        seen[row, c] = p
        assert r == ratings[row, c]
    np.testing.assert_allclose(seen, probs, atol=1e-5)
    metrics = evaluation.metrics
    assert metrics["segment_map"] == pytest.approx(
        slow_segment_map(seen, ids, starts, ratings, top_n=100_000), abs=1e-12)
    assert metrics["segment_map"] == pytest.approx(summary["validation"]["segment_map"], abs=1e-9)
    assert metrics["num_segments"] == len(ids)
    assert metrics["num_rated_pairs"] == int((ratings >= 0).sum())
    capped = slow_segment_map(seen, ids, starts, ratings, top_n=7)
    assert capped == pytest.approx(
        run_segment_evaluation(model, cfg, top_n=7, verbose=False).metrics["segment_map"],
        abs=1e-12)
    assert capped < metrics["segment_map"]  # the cap of 7 per class leaves positives out

    run = root / "run"
    procs = [start_process(["-m", "videotag", "eval", "--segments", f"--model_dir={run}",
                            "--top_n=7", f"--report={root / 'eval7.json'}"]),
             start_process(["-m", "videotag", "predict", "--segments", f"--model_dir={run}",
                            f"--input_data_pattern={eval_path}", "--top_k=4",
                            f"--output_file={root / 'submission.csv'}",
                            f"--timeline_file={root / 'timeline.jsonl'}"])]
    (code, out, err), (code2, _, err2) = finish_processes(procs)
    assert code == 0, err[-2000:]
    figure, rest = out.splitlines()[0].split("  ", 1)
    assert figure.startswith("segment mAP@7 ")
    assert float(figure.split()[-1]) == pytest.approx(capped, abs=1e-4)
    assert rest == f"(16 videos, {len(ids)} segments, {int((ratings >= 0).sum())} rated pairs)"
    report = json.loads((root / "eval7.json").read_text())
    assert report["metrics"]["segment_map"] == pytest.approx(capped, abs=1e-6)
    assert {c["name"] for c in report["per_class"]} == {"Guitar", "Drum", "Piano", "Singing"}
    assert code2 == 0, err2[-2000:]

    # the submission: every class, all its segments (top_k covers the classes), most
    # probable first, as the starter code writes it
    lines = (root / "submission.csv").read_text().splitlines()
    assert lines[0] == "Class,Segments"
    assert [int(line.split(",")[0]) for line in lines[1:]] == [0, 1, 2, 3]
    names = [f"{i.decode()}:{t}" for i, t in keys]
    for line in lines[1:]:
        cls, segments = line.split(",")
        listed = segments.split(" ")
        assert sorted(listed) == sorted(names)
        ranked = probs[[names.index(x) for x in listed], int(cls)]
        assert (np.diff(ranked) <= 1e-5).all()
    # the timeline: per video its tags and each segment's start, end and tags
    timeline = [json.loads(line) for line in (root / "timeline.jsonl").read_text().splitlines()]
    assert [e["id"] for e in timeline] == sorted({i.decode() for i in ids})
    first = timeline[0]
    assert [(s["start"], s["end"]) for s in first["segments"]] == [
        (s, min(s + 5, first["duration"])) for s in starts[ids == ids[0]]]
    segment = first["segments"][0]
    np.testing.assert_allclose([t["probability"] for t in segment["tags"]],
                               np.sort(probs[0])[::-1], atol=1e-5)
    names = ["Guitar", "Drum", "Piano", "Singing"]
    assert probs[0][names.index(segment["tags"][0]["name"])] == pytest.approx(probs[0].max(),
                                                                              abs=1e-5)

    procs = [start_process(["-m", "videotag", "eval", "--segments", f"--model_dir={run}",
                            f"--submission={root / 'submission.csv'}", "--top_n=7"]),
             start_process(["-m", "videotag", "timeline",
                            f"--timeline_file={root / 'timeline.jsonl'}",
                            f"--output_file={root / 'page.html'}"])]
    (code, out, err), (code2, _, err2) = finish_processes(procs)
    assert code == 0, err[-2000:]
    head, rest = out.split("  ", 1)
    assert head.startswith(f"{root / 'submission.csv'}: segment mAP@7 ")
    assert float(head.split()[-1]) == pytest.approx(capped, abs=1e-4)
    assert rest.startswith("(4 classes submitted")
    assert code2 == 0 and "wrote" in err2 and (root / "page.html").is_file()



def test_segments_trained_beat_a_whole_video_model_applied_per_segment(trained):
    # the same records and settings, trained on the video labels: these name both
    # classes of a pair in every video, so nothing tells the model which is which
    root, summary, eval_path = trained
    cfg = _config(root)
    train(cfg, str(root / "video_run"), verbose=False)
    cfg, model = load_trained(str(root / "video_run"))
    video_map = run_segment_evaluation(model, cfg, verbose=False).metrics["segment_map"]
    assert summary["validation"]["segment_map"] > video_map + 0.1, video_map

SERVE = textwrap.dedent("""
    import json, sys
    for name in ("videotag", "keras", "tests"):
        sys.modules[name] = None  # TensorFlow alone
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[2])]
    out = loaded.signatures["predict_segments"](example_bytes=tf.constant(records[:5]))
    print(json.dumps({k: (v.numpy().astype(str).tolist() if v.dtype == tf.string
                          else v.numpy().tolist()) for k, v in out.items()}))
""")


def test_the_predict_segments_signature_in_a_fresh_process(trained, tmp_path):
    root, _, eval_path = trained
    cfg, model = load_trained(str(root / "run"))
    path = export_saved_model(model, cfg, str(tmp_path / "exports"))
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(script), str(path), eval_path], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    probs, ids, starts, _ = _window_probabilities(model, eval_path)
    videos = [i.decode() for i in dict.fromkeys(ids)][:5]
    assert out["video_id"] == videos
    most = max(int((ids == v.encode()).sum()) for v in videos)
    names = ["Guitar", "Drum", "Piano", "Singing"]
    for b, video in enumerate(videos):  # batch-first: [videos, segments, k]
        mine = ids == video.encode()
        count = int(mine.sum())
        assert out["num_segments"][b] == count
        assert out["segment_start_times"][b] == starts[mine].tolist() + [-1] * (most - count)
        served = np.array(out["segment_class_indexes"][b][:count])  # export.top_k = 2
        top2 = -np.sort(-probs[mine], axis=1)[:, :2]
        np.testing.assert_allclose(np.take_along_axis(probs[mine], served, 1), top2, atol=1e-5)
        np.testing.assert_allclose(out["segment_predictions"][b][:count], top2, atol=1e-5)
        assert out["segment_class_indexes"][b][count:] == [[-1, -1]] * (most - count)
        assert out["segment_class_names"][b][:count] == [[names[c] for c in row]
                                                         for row in served.tolist()]
        assert out["segment_class_names"][b][count:] == [["", ""]] * (most - count)
    assert len(out["class_indexes"][0]) == 2 and len(out["embedding"]) == 5
