"""Every output on a file system without atomic renames: TensorFlow's in-memory `ram://`
(a stand-in for gs:// or s3://), where `videotag.files` swaps files in by write,
verify, swap (a folder: copied file by file). Each output is read back and compared with what was computed in
memory: the export served from ram:// against the Keras model, predictions,
embeddings, the evaluation and validation reports; an earlier file of the same name
is replaced whole, and no temporary file is left."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import frame_record, tiny_config, write_file
from videotag import files
from videotag.data import make_dataset
from videotag.data.pipeline import model_inputs
from videotag.data.validation import validate_data
from videotag.data.validation_report import write_validation
from videotag.evaluation.evaluator import run_evaluation
from videotag.evaluation.report import write_report
from videotag.export import export_saved_model
from videotag.inference import (
    predict_from_saved_model,
    write_predictions,
    write_predictions_file,
)
from videotag.retrieval.embeddings import embedding_batches, load_embeddings, write_embeddings

RGB, AUDIO = 16, 8
ROOT = "ram://videotag-test"


def listing(folder):
    """Every file under `folder` (relative names; ram:// phantom names left out)."""
    out = []
    for path, _, names in tf.io.gfile.walk(folder):
        out += [f"{path}/{n}"[len(folder) + 1:] for n in names
                if tf.io.gfile.exists(f"{path}/{n}")]
    return sorted(out)


@pytest.fixture(scope="module")
def world():
    """A tiny model, its shards and its export on ram://."""
    assert not files.has_atomic_rename(ROOT)
    cfg = tiny_config(**{"data.feature_sizes": f"[{RGB}, {AUDIO}]"})
    model = videotag.build_model(cfg)
    write_file(f"{ROOT}/data/s0.tfrecord", [
        frame_record(f"v{i}".encode(), (i % 10, (i + 3) % 10), rgb_size=RGB, audio_size=AUDIO,
                     frames=2 + i % 5, seed=i) for i in range(24)])
    yield {"cfg": cfg, "model": model, "pattern": f"{ROOT}/data/*.tfrecord",
           "exported": export_saved_model(model, cfg, f"{ROOT}/exports")}
    files.remove_tree(ROOT)


def keras_scores(world):
    """Video id -> the Keras model's scores on the records (in memory)."""
    out = {}
    ds = make_dataset(world["cfg"].data, world["pattern"], 8, training=False, bucket=False)
    for batch in ds:
        scores = world["model"](model_inputs(world["cfg"].data, batch), training=False)
        scores = scores["tags"] if isinstance(scores, dict) else scores
        out.update(zip([v.decode() for v in batch["video_id"].numpy()], np.asarray(scores)))
    return out


def test_export_and_predictions_on_ram(world):
    exported = world["exported"]
    assert exported == f"{ROOT}/exports/nextvlad/1"
    assert listing(f"{ROOT}/exports") == sorted([
        "models.config", "nextvlad/1/fingerprint.pb", "nextvlad/1/saved_model.pb",
        "nextvlad/1/variables/variables.data-00000-of-00001",
        "nextvlad/1/variables/variables.index", "nextvlad/1/assets.extra/model.keras",
        "nextvlad/1/assets.extra/tf_serving_warmup_requests",
        "nextvlad/1/assets.extra/videotag_config.yaml"])
    expected = keras_scores(world)
    served = list(predict_from_saved_model(exported, world["pattern"], top_k=3))
    assert [p.video_id for p in served] == [f"v{i}" for i in range(24)]
    for row in served:
        top = np.argsort(-expected[row.video_id], kind="stable")[:3]
        np.testing.assert_allclose([p for _, _, p in row.tags], expected[row.video_id][top],
                                   rtol=1e-4, atol=1e-6)
    target = f"{ROOT}/out/pred.csv"
    files.write_text(target, "an earlier, longer file\n" * 1000)
    write_predictions_file(iter(served), target, "csv", verbose=False)
    in_memory = io.StringIO()
    write_predictions(iter(served), in_memory, "csv", verbose=False)
    with tf.io.gfile.GFile(target) as f:
        assert f.read() == in_memory.getvalue()  # replaced whole, not appended to
    assert listing(f"{ROOT}/out") == ["pred.csv"]


def test_embeddings_and_reports_on_ram(world):
    prefix = f"{ROOT}/emb/v"
    batches = list(embedding_batches(world["pattern"], saved_model=world["exported"],
                                     batch_size=8))
    count, dim = write_embeddings(iter(batches), prefix, ("npy", "tfrecord"), verbose=False)
    ids, vectors = load_embeddings(prefix)
    raw = np.concatenate([v for _, v in batches])
    assert count == 24 and ids == [i for b, _ in batches for i in b]
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    stored = [tf.train.Example.FromString(r.numpy())
              for r in tf.data.TFRecordDataset(f"{prefix}.tfrecord")]
    np.testing.assert_allclose([e.features.feature["embedding"].float_list.value
                                for e in stored], vectors, rtol=1e-6)
    assert listing(f"{ROOT}/emb") == ["v.ids.txt", "v.npy", "v.tfrecord"]

    cfg = world["cfg"]
    evaluation = run_evaluation(world["model"], cfg, world["pattern"], 8)
    paths = write_report(f"{ROOT}/reports/eval.json", [evaluation], [str(i) for i in range(10)])
    with tf.io.gfile.GFile(paths["json"]) as f:
        report = json.load(f)
    assert report["gap"] == pytest.approx(float(evaluation.metrics["gap"]))
    validation = validate_data(cfg.data, world["pattern"], progress_seconds=0)
    assert (validation.records, validation.good) == (24, 24)
    written = write_validation(validation, f"{ROOT}/reports/data.json")
    with tf.io.gfile.GFile(written[0]) as f:
        assert json.load(f)["records"] == 24
    with tf.io.gfile.GFile(written[1], "rb") as f:
        assert tf.io.decode_png(f.read()).shape[-1] in (3, 4)
    assert listing(f"{ROOT}/reports") == sorted(
        ["eval.json", "eval.md", "eval_pr_curve.png", "eval_ap_histogram.png", "data.json",
         "data_histograms.png"])
