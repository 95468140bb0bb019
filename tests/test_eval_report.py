"""Evaluation of models on records: the summary computed by TensorFlow in the predict
step, category outputs, NaN refusal, and the table / JSON / Markdown / PNG report."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import (
    NUM_CLASSES,
    frame_record,
    random_batch,
    tiny_config,
    write_file,
)
from videotag.data import make_dataset, model_inputs
from videotag.errors import ModelError
from videotag.evaluation import StreamingEvaluator, category_ranks, summarize_batch
from videotag.evaluation.evaluator import (
    Evaluation,
    format_metrics,
    predict_function,
    run_evaluation,
    summarize_tags_tf,
)
from videotag.evaluation.report import format_table, write_report
from videotag.models.interface import frame_inputs

_summarize_tf = tf.function(summarize_tags_tf, reduce_retracing=True)


@pytest.mark.parametrize(
    "videos,classes,k,decimals,density",
    [(0, 5, 3, None, 0.3), (6, 1, 20, 1, 0.5), (9, 7, 20, 1, 0.4), (40, 30, 5, 1, 0.2),
     (25, 12, 2, 0, 0.6), (30, 50, 20, None, 0.05)],
)
def test_tf_summary_equals_numpy_summary(videos, classes, k, decimals, density):
    # rounded scores (many ties), videos with more labels than k, k above the classes
    for seed in range(3):
        rng = np.random.default_rng(seed)
        pred = rng.random((videos, classes)).astype(np.float32)
        if decimals is not None:
            pred = np.round(pred, decimals)
        lab = rng.random((videos, classes)) < density
        for threshold in (0.5, 0.1, 0.3):
            expected = summarize_batch(pred, lab, k, threshold)
            got = _summarize_tf(pred, lab.astype(np.float32), tf.constant(k),
                                tf.constant(threshold, tf.float64))
            assert int(got.pop("nan_scores")) == 0
            assert got.keys() == expected.keys()
            for key, value in expected.items():
                np.testing.assert_array_equal(got[key].numpy().astype(value.dtype), value,
                                              err_msg=key)


def test_threshold_is_compared_exactly_in_both_summaries():
    # float32(0.7) is just below 0.7 and float32(0.1) just above 0.1: a float32 score
    # counts as predicted only if its real value is >= the threshold.
    below, above = np.float32(0.7), np.nextafter(np.float32(0.7), np.float32(1))
    pred = np.array([[below, above, np.float32(0.1)]], np.float32)
    lab = np.array([[1, 1, 1]], bool)
    for threshold, expected in ((0.7, [0, 1, 0]), (0.1, [1, 1, 1]), (float(below), [1, 1, 0])):
        numpy_tp = summarize_batch(pred, lab, 2, threshold)["true_positives"]
        tf_tp = _summarize_tf(pred, lab.astype(np.float32), tf.constant(2),
                              tf.constant(threshold, tf.float64))["true_positives"]
        assert numpy_tp.tolist() == expected and tf_tp.numpy().tolist() == expected


# ---------------------------------------------------------------------------
# A tiny model on real TFRecords.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Two shards; label sets of 0 to 7 classes (7 > top_k 3, for PERR's full-row case)."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(5)
    for shard in range(2):
        recs = []
        for i in range(20):
            n = [0, 1, 2, 3, 7][i % 5]
            labels = tuple(sorted(rng.choice(NUM_CLASSES, n, replace=False).tolist()))
            recs.append(frame_record(f"s{shard}v{i}".encode(), labels,
                                     frames=int(rng.integers(1, 8)), seed=100 * shard + i))
        write_file(root / f"validate{shard}.tfrecord", recs)
    return str(root / "validate*.tfrecord")


def _cfg(**kw):
    return tiny_config(**{"eval.top_k": 3, "eval.threshold": 0.5, "eval.batch_size": 7, **kw})


@pytest.mark.parametrize("on_device", [True, False], ids=["tf-summary", "host-summary"])
def test_evaluation_on_records_equals_whole_array_metrics(records, on_device):
    cfg = _cfg()
    keras.utils.set_random_seed(1)
    model = videotag.build_model(cfg)
    evaluation = run_evaluation(model, cfg, records, verbose=False,
                                predict=predict_function(model, cfg.data, on_device))
    # The same batches, full score matrices brought to the host, metrics in numpy.
    scores, labels = [], []
    for batch in make_dataset(cfg.data, records, 7, training=False):
        scores.append(model(model_inputs(cfg.data, batch), training=False)["tags"].numpy())
        labels.append(batch["labels"].numpy())
    whole = StreamingEvaluator(NUM_CLASSES, top_k=3, threshold=0.5)
    whole.add(np.concatenate(scores), np.concatenate(labels))
    expected = whole.result()
    assert evaluation.metrics["num_videos"] == 40
    for key, value in expected.items():
        assert evaluation.metrics[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < expected["perr"] < 1 and expected["num_positives"] == 2 * (1 + 2 + 3 + 7) * 4
    ap, _ = evaluation.tags.per_class_ap()
    np.testing.assert_allclose(ap, whole.per_class_ap()[0], rtol=0, atol=1e-9)
    # Another top_k and threshold reuse the same traced step.
    step = predict_function(model, cfg.data, on_device)
    other = run_evaluation(model, cfg, records, verbose=False, predict=step, top_k=5,
                           threshold=0.2)
    assert other.metrics["top_k"] == 5 and other.metrics["threshold"] == 0.2
    run_evaluation(model, cfg, records, verbose=False, predict=step, top_k=2)
    assert step.experimental_get_tracing_count() == 1
    line = format_metrics(evaluation.metrics)
    assert line.startswith(f"GAP@3 {expected['gap']:.4f}") and line.endswith("(40 videos)")


def test_predict_step_sends_only_top_k_and_counters_to_the_host(records):
    cfg = _cfg()
    keras.utils.set_random_seed(3)
    model = videotag.build_model(cfg)
    step = predict_function(model, cfg.data, on_device=True)  # as on a GPU
    batch = random_batch(cfg, batch=6, frames=5)
    labels = np.zeros((6, NUM_CLASSES), np.float32)
    labels[:, 2] = 1
    out = step(batch, labels, tf.fill([6], -1), tf.constant(4), tf.constant(0.5, tf.float64))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "top_classes": (6, 4), "top_scores": (6, 4), "top_positive": (6, 4),
        "num_labels": (6,), "perr_hits": (6,), "first_positive_rank": (6,),
        "class_positives": (NUM_CLASSES,),
        "true_positives": (NUM_CLASSES,), "false_positives": (NUM_CLASSES,), "nan_scores": (),
    }
    # Eager Keras scores can differ from the traced ones in the last bit.
    scores = model(batch, training=False)["tags"].numpy()
    expected = summarize_batch(scores, labels, 4, 0.5)
    np.testing.assert_allclose(out.pop("top_scores"), expected.pop("top_scores"), atol=1e-6)
    for key, value in expected.items():
        np.testing.assert_array_equal(out[key].numpy().astype(value.dtype), value, err_msg=key)


def _multi_task_model(cfg, num_categories, tags=True):
    """A small model with a softmax `category` output (and `tags` unless tags=False)."""
    inputs, frames, _ = frame_inputs(cfg)
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(f) for f in frames])
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = {
        "category": keras.layers.Dense(num_categories, activation="softmax", name="category")(x),
        "embedding": keras.layers.Identity(name="embedding")(x),
    }
    if tags:
        outputs["tags"] = keras.layers.Dense(cfg.data.num_classes, activation="sigmoid",
                                             name="tags")(x)
    return keras.Model(inputs, outputs)


def test_category_output_is_ranked_in_the_predict_step(records):
    cfg = _cfg()
    cfg.data.num_categories = 6  # the field other models' configs add; read with getattr
    keras.utils.set_random_seed(2)
    batch = random_batch(cfg, batch=8, frames=4)
    categories = np.array([0, 5, 3, -1, 2, 2, 1, 4], np.int32)
    labels = np.zeros((8, NUM_CLASSES), np.float32)
    for with_tags in (True, False):
        model = _multi_task_model(cfg, 6, tags=with_tags)
        out = predict_function(model, cfg.data, on_device=True)(
            batch, labels, categories, tf.constant(3), tf.constant(0.5, tf.float64))
        expected = category_ranks(model(batch, training=False)["category"].numpy(), categories)
        np.testing.assert_array_equal(out["category_rank"].numpy(), expected)
        assert expected[3] == -1
        assert ("top_classes" in out) == with_tags
    # Without data.num_categories the category output is not scored.
    del cfg.data.num_categories
    out = predict_function(_multi_task_model(cfg, 6), cfg.data, on_device=True)(
        batch, labels, categories, tf.constant(3), tf.constant(0.5, tf.float64))
    assert "category_rank" not in out and "top_classes" in out
    # A model with nothing to score says so.
    with pytest.raises(ModelError, match="nothing to evaluate"):
        predict_function(_multi_task_model(cfg, 6, tags=False), cfg.data)(
            batch, labels, categories, tf.constant(3), tf.constant(0.5, tf.float64))
    line = format_metrics({"category_top1": 0.5, "category_top5": 0.75, "num_videos": 4})
    assert line == "category top-1 0.5000  top-5 0.7500  (4 videos)"


def test_nan_scores_stop_the_evaluation(records):
    cfg = _cfg()
    keras.utils.set_random_seed(4)
    model = videotag.build_model(cfg)
    for w in model.weights:
        w.assign(np.full(w.shape, np.nan, w.dtype) if w.dtype.startswith("float") else w)
    for on_device in (True, False):
        with pytest.raises(ModelError, match="NaN tag scores"):
            run_evaluation(model, cfg, records, verbose=False,
                           predict=predict_function(model, cfg.data, on_device))


# ---------------------------------------------------------------------------
# Reports.
# ---------------------------------------------------------------------------


def _evaluation(seed, pattern="data/*.tfrecord"):
    rng = np.random.default_rng(seed)
    pred = np.round(rng.random((200, 6)), 2)
    lab = rng.random((200, 6)) < [0.3, 0.2, 0.1, 0.05, 0.02, 0.0]  # class 5: no positives
    pred = np.clip(pred + 0.4 * lab, 0, 1)
    ev = StreamingEvaluator(6, top_k=3, threshold=0.5)
    ev.add(pred, lab)
    return Evaluation(metrics={**ev.result(), "seconds": 0.1}, tags=ev, pattern=pattern)


NAMES = ["Game", "Vehicle", "Music | Live", "Car", "Concert", "Dance"]


def test_report_of_one_model(tmp_path):
    evaluation = _evaluation(0)
    paths = write_report(str(tmp_path / "out" / "eval.json"), [evaluation], NAMES, ["runs/a"])
    assert sorted(Path(p).name for p in paths.values()) == [
        "eval.json", "eval.md", "eval_ap_histogram.png", "eval_pr_curve.png"]
    report = json.loads(Path(paths["json"]).read_text())
    assert report["gap"] == evaluation.metrics["gap"] and report["model_dir"] == "runs/a"
    ap, positives = evaluation.tags.per_class_ap()
    assert [r["ap"] for r in report["per_class"]] == ap.tolist()
    assert [r["name"] for r in report["per_class"]] == NAMES
    assert report["per_class"][0]["positives"] == positives[0]
    assert len(report["pr_curve"]["recall"]) == len(report["pr_curve"]["precision"]) > 10
    md = Path(paths["markdown"]).read_text()
    assert f"| GAP@3 | {evaluation.metrics['gap']:.4f} |" in md
    assert f"| 2 | Music \\| Live | {positives[2]} | {ap[2]:.4f} |" in md  # pipe escaped
    assert "| 5 | Dance |" not in md and "1 classes without positives" in md
    # the most frequent class first
    assert md.index("| 0 | Game |") < md.index("| 1 | Vehicle |") < md.index("| 3 | Car |")
    assert "![precision-recall curve](eval_pr_curve.png)" in md
    from matplotlib import image

    for key in ("pr_curve", "ap_histogram"):
        assert image.imread(paths[key]).shape[:2] == (450, 600)
    table = format_table([evaluation.metrics], ["model"])
    assert "GAP@3 " in table and f"{evaluation.metrics['map']:.4f}" in table
    assert "precision @0.5 (macro)" in table and "B - A" not in table


def test_report_comparing_two_models(tmp_path):
    a, b = _evaluation(0), _evaluation(1)
    paths = write_report(str(tmp_path / "compare.json"), [a, b], NAMES, ["runs/a", "runs/b"],
                         ["A", "B"])
    report = json.loads(Path(paths["json"]).read_text())
    assert [m["model_dir"] for m in report["models"]] == ["runs/a", "runs/b"]
    assert report["models"][1]["gap"] == b.metrics["gap"]
    md = Path(paths["markdown"]).read_text()
    diff = b.metrics["gap"] - a.metrics["gap"]
    assert f"| GAP@3 | {a.metrics['gap']:.4f} | {b.metrics['gap']:.4f} | {diff:+.4f} |" in md
    ap_a, ap_b = a.tags.per_class_ap()[0], b.tags.per_class_ap()[0]
    assert f"| {ap_a[1]:.4f} | {ap_b[1]:.4f} | {ap_b[1] - ap_a[1]:+.4f} |" in md
    table = format_table([a.metrics, b.metrics], ["A", "B"])
    assert table.splitlines()[0].split() == ["metric", "A", "B", "B", "-", "A"]
    assert f"{diff:+.4f}" in table
    assert Path(paths["pr_curve"]).stat().st_size > 1000


def test_report_of_a_category_only_model(tmp_path):
    metrics = {"category_top1": 0.5, "category_top5": 0.9, "num_category_videos": 10,
               "num_videos": 10}
    paths = write_report(str(tmp_path / "eval.json"), [Evaluation(metrics=metrics)], NAMES)
    assert set(paths) == {"json", "markdown"}  # no tag figures to draw
    assert "| category top-1 | 0.5000 |" in Path(paths["markdown"]).read_text()
    assert json.loads(Path(paths["json"]).read_text())["category_top5"] == 0.9
