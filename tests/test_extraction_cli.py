"""The raw-video CLIs end to end: tools/extract_features.py (fit the PCA, extract, a
failed file counted) and tools/predict.py --videos (VideoTag JSON), in subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import finish_processes, start_process
from videotag.extraction.synthetic import write_video

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["Red", "Green", "Blue", "Low tone", "High tone"]
TINY = ["--backbone=MobileNetV3Small", "--weights=random", "--audio_weights=random",
        "--override=image_size=32", "--override=feature_sizes=[16, 8]", "--override=seed=3",
        "--noprogress"]


def _run(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    videos = root / "videos"
    videos.mkdir()
    write_video(videos / "a.mp4", seconds=3.0, color=(200, 40, 40), tone_hz=220.0)
    write_video(videos / "b.webm", seconds=2.0, color=(40, 180, 60), tone_hz=880.0, seed=1)
    write_video(videos / "c.mkv", seconds=4.0, color=(40, 70, 200), tone_hz=None, seed=2)
    (videos / "d.webm").write_bytes(os.urandom(2000))  # not a video
    (root / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "list.tsv").write_text("videos/a.mp4\tred, low\tRed,Low tone\n"
                                   "videos/b.webm\tgreen, high\tGreen,High tone\n"
                                   "videos/c.mkv\tblue, silent\t2\n")
    proc = _run("tools/extract_features.py", f"--input={videos}", "--fit_pca",
                f"--pca_dir={root / 'pca'}", f"--output_dir={root / 'features'}", *TINY)
    return root, proc


def test_extract_cli_fits_pca_extracts_and_counts_the_failure(extracted):
    root, proc = extracted
    assert proc.returncode == 1, proc.stderr[-3000:]  # one video failed
    assert "d.webm: cannot be opened as a video" in proc.stderr
    assert "extracted 3 videos (9 frames)" in proc.stderr and "1 failed" in proc.stderr
    assert "1 without audio" in proc.stderr
    assert "rgb: 576 -> 16" in proc.stderr and "audio: 128 -> 8" in proc.stderr
    for name, k, d in (("rgb", 16, 576), ("audio", 8, 128)):
        assert np.load(root / "pca" / name / "eigenvecs.npy").shape == (k, d)
    summary = json.loads((root / "features" / "summary.json").read_text())
    assert summary["extracted"] == 3 and len(summary["failed"]) == 1
    ids = (root / "features" / "part-00000.ids").read_text().split()
    assert ids == ["a", "b", "c"]


def test_predict_videos_prints_videotag_json(extracted, tmp_path):
    """predict --videos with the model directory's model.keras, and with --checkpoint
    naming other weights (two processes at once): each equals its own model."""
    root, _ = extracted
    cfg = videotag.config.load("nextvlad", [
        "data.num_classes=5", f"data.label_file={root / 'labels.txt'}",
        "data.feature_sizes=[16, 8]", "model.hidden_size=16", "model.cluster_size=4",
        "model.groups=2", "model.dropout=0.0", "model.input.normalization=none"])
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model = videotag.build_model(cfg)
    cfg.save(model_dir / "config.yaml")
    model.save(model_dir / "model.keras")
    other = videotag.build_model(cfg)  # other initial weights
    other.save(tmp_path / "other.keras")
    common = ["tools/predict.py", f"--model_dir={model_dir}", f"--videos={root / 'list.tsv'}",
              f"--extraction_config={root / 'features' / 'extraction.yaml'}", "--top_k=3"]
    results = finish_processes([
        start_process([*common, f"--features_dir={tmp_path / 'features'}"]),
        start_process([*common, f"--features_dir={tmp_path / 'features2'}",
                       f"--checkpoint={tmp_path / 'other.keras'}"])], timeout=600)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    result, result_other = (json.loads(out) for _, out, _ in results)
    assert [Path(entry[0]).name for entry in result] == ["a.mp4", "b.webm", "c.mkv"]
    # the same features as the extraction run (same settings, same seeded networks)
    for name in ("a", "b", "c"):
        first = _record(root / "features" / "part-00000.tfrecord", name)
        again = _record(tmp_path / "features" / "part-00000.tfrecord", name)
        for feature in ("rgb", "audio"):
            a, b = _frames(first, feature), _frames(again, feature)
            # codes of features next to 0 (127.5 before rounding) may differ by one
            # through float rounding in the networks
            assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1
    records = [_record(tmp_path / "features" / "part-00000.tfrecord", n).SerializeToString()
               for n in ("a", "b", "c")]
    from videotag.data import RecordParser, decode_frames

    parsed = RecordParser(cfg.data).parse(tf.constant(records), tf.constant(["x"] * 3))
    assert parsed.errors.numpy().tolist() == [b""] * 3
    for weights, output in ((model, result), (other, result_other)):
        for i, entry in enumerate(output):
            inputs = {"num_frames": parsed.features["num_frames"][i:i + 1]}
            for name, size in zip(cfg.data.feature_names, cfg.data.feature_sizes):
                inputs[name] = decode_frames(parsed.features[name][i:i + 1],
                                             inputs["num_frames"][0], size)
            probs = weights(inputs, training=False)["tags"].numpy()[0]
            tags = entry[1:]
            assert [t["class_id"] for t in tags] == np.argsort(-probs)[:3].tolist()
            assert [t["class_name"] for t in tags] == [CLASSES[t["class_id"]] for t in tags]
            np.testing.assert_allclose([t["probability"] for t in tags],
                                       np.sort(probs)[::-1][:3], atol=2e-6)
    assert result != result_other  # the two weights tell apart


def _frames(example, name):
    return np.stack([np.frombuffer(f.bytes_list.value[0], np.uint8)
                     for f in example.feature_lists.feature_list[name].feature])


def _record(path, video_id):
    for raw in tf.data.TFRecordDataset(str(path)):
        example = tf.train.SequenceExample.FromString(raw.numpy())
        if example.context.feature["id"].bytes_list.value[0] == video_id.encode():
            return example
    raise AssertionError(f"no record {video_id} in {path}")
