"""Validation every N steps, the best checkpoint kept apart, early stopping, and eval /
predict on `--checkpoint=best`, on a run whose validation metric really peaks: two
epochs on records whose labels follow faint class prototypes (the metric rises),
then, resumed, epochs on the same videos with every label moved to the next class
(the metric falls)."""

import contextlib
import io
import json

import numpy as np
import pytest

from tests.helpers import faint_records, finish_processes, start_process, tiny_config, write_file
from videotag.errors import ConfigError, ModelError
from videotag.evaluation import StreamingEvaluator
from videotag.evaluation.evaluator import run_evaluation
from videotag.inference import predict_from_model_dir
from videotag.retrieval.embeddings import embedding_batches
from videotag.training.trainer import checkpoint_path, load_trained, train

CLASSES, PATIENCE = 4, 2


def _cfg(root, train_file, epochs, **kw):
    base = {"data.train_data_pattern": str(root / train_file),
            "data.eval_data_pattern": str(root / "val.tfrecord"),
            "data.num_classes": CLASSES, "eval.top_k": CLASSES,
            "train.learning_rate": 0.003, "train.tensorboard": False, "train.epochs": epochs,
            "train.eval_every_steps": 2, "train.keep_best": "gap",
            "train.early_stopping.patience": PATIENCE}
    base.update(kw)
    return tiny_config(**base)


@pytest.fixture(scope="module")
def peaked(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    write_file(root / "good.tfrecord", faint_records(32, seed=1))
    write_file(root / "moved.tfrecord", faint_records(32, seed=1, shift=1))
    write_file(root / "val.tfrecord", faint_records(48, seed=2))
    model_dir = str(root / "m")
    train(_cfg(root, "good.tfrecord", 2), model_dir, verbose=False)  # 8 steps
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        summary = train(_cfg(root, "moved.tfrecord", 8), model_dir)
    metrics = json.loads((root / "m" / "metrics.json").read_text())
    return root, model_dir, summary, metrics, stderr.getvalue()


def test_the_best_checkpoint_is_kept_and_the_run_stops_when_the_metric_falls(peaked):
    root, model_dir, summary, metrics, stderr = peaked
    validations = metrics["validations"]
    steps = [v["step"] for v in validations]
    gaps = [v["metrics"]["gap"] for v in validations]
    assert steps == list(range(2, steps[-1] + 1, 2))  # every 2 steps, once per step
    for epoch in metrics["epochs"]:  # each epoch's validation is that of its last step
        at_end = next(v for v in validations if v["step"] == 4 * epoch["epoch"])
        assert epoch["validation"] == at_end["metrics"]
    best = int(np.argmax(gaps))
    assert gaps[0] < gaps[best] and steps[best] <= 8  # it rose on the right labels ...
    assert max(gaps[best + 1:]) < gaps[best]  # ... and fell once they were moved
    # stopped after `patience` validations without improvement, long before 8 epochs
    assert len(validations) == best + 1 + PATIENCE
    assert summary["steps"] == steps[-1] < 8 * 4
    message = (f"stopped early at step {steps[-1]}: validation gap has not improved on "
               f"{gaps[best]:.4f} (step {steps[best]}) by more than 0 in {PATIENCE} validations")
    assert summary["stopped_early"].startswith(message) and message in stderr
    assert summary["best"]["step"] == steps[best] and summary["best"]["value"] == gaps[best]
    kept = sorted(p.name for p in (root / "m" / "checkpoints" / "best").iterdir())
    assert kept == [f"ckpt-{steps[best]:09d}"]
    assert str(root / "m" / "checkpoints" / "best" / kept[0]) in stderr
    # the run stays stopped: the same command trains nothing more
    again = io.StringIO()
    with contextlib.redirect_stderr(again):
        rerun = train(_cfg(root, "moved.tfrecord", 8), model_dir)
    assert rerun["steps"] == steps[-1] and "nothing to train" in again.getvalue()


def test_eval_and_predict_on_the_best_checkpoint_give_its_logged_metrics(peaked):
    root, model_dir, summary, metrics, _ = peaked
    logged = metrics["best"]["validation"]
    cfg, model = load_trained(model_dir, "best")
    scored = run_evaluation(model, cfg, verbose=False).metrics
    for key in ("gap", "map", "hit_at_1", "perr"):
        assert scored[key] == pytest.approx(logged[key], abs=1e-6), key
    # predictions of every class, scored in NumPy against the records' labels
    rows = list(predict_from_model_dir(model_dir, str(root / "val.tfrecord"), top_k=CLASSES,
                                       checkpoint="best"))
    scores = np.zeros((len(rows), CLASSES), np.float32)
    labels = np.zeros((len(rows), CLASSES), bool)
    for i, row in enumerate(rows):
        for class_id, _, probability in row.tags:
            scores[i, class_id] = probability
        labels[i, int(row.video_id.split("-")[1]) % CLASSES] = True
    numpy = StreamingEvaluator(CLASSES, top_k=CLASSES)
    numpy.add(scores, labels)
    assert numpy.gap() == pytest.approx(logged["gap"], abs=1e-6)
    # the latest checkpoint is another model: the one that had stopped improving
    _, latest = load_trained(model_dir, "latest")
    assert run_evaluation(latest, cfg, verbose=False).metrics["gap"] < logged["gap"]
    # embeddings: "best" is the best checkpoint's folder given as a path, not "latest"
    val = str(root / "val.tfrecord")
    embedded = {name: np.concatenate([e for _, e in embedding_batches(
        val, model_dir, checkpoint=name)]) for name in
        ("best", str(checkpoint_path(model_dir, "best")), "latest")}
    np.testing.assert_array_equal(embedded["best"],
                                  embedded[str(checkpoint_path(model_dir, "best"))])
    assert not np.allclose(embedded["best"], embedded["latest"], atol=1e-4)
    # the command: eval with --checkpoint=best, and Hit@2 beside Hit@1
    report = root / "best_eval.json"
    ((code, stdout, err),) = finish_processes([start_process([
        "-m", "videotag", "eval", f"--model_dir={model_dir}", "--checkpoint=best",
        "--hit_at=1,2", f"--report={report}"])])
    assert code == 0, err
    result = json.loads(report.read_text())
    assert result["gap"] == pytest.approx(logged["gap"], abs=1e-6)
    assert result["hit_at_1"] <= result["hit_at_2"] <= 1.0
    assert f"Hit@1 {result['hit_at_1']:.4f}  Hit@2 {result['hit_at_2']:.4f}" in stdout


def test_selection_needs_validation_data_and_a_best_checkpoint(tmp_path):
    cfg = tiny_config(**{"data.train_data_pattern": str(tmp_path / "t*.tfrecord"),
                         "train.keep_best": "map"})
    write_file(tmp_path / "t0.tfrecord", faint_records(8, seed=0))
    with pytest.raises(ConfigError, match=r"config key 'train.keep_best' needs validation data"):
        train(cfg, str(tmp_path / "m"), verbose=False)
    with pytest.raises(ConfigError, match=r"'train.early_stopping.metric' is 'category_top1' "
                                          "but the model has no category head"):
        tiny_config(**{"train.early_stopping.patience": 1,
                       "train.early_stopping.metric": "category_top1"})
    with pytest.raises(ModelError, match=r"no best checkpoint in checkpoints/best/ \(train with "
                                         "train.keep_best set\)"):
        checkpoint_path(str(tmp_path / "m"), "best")


def test_a_run_on_rated_segments_selects_by_the_segment_metric():
    # its validation is the segment metric alone (evaluate() with data.segment_labels)
    cfg = tiny_config(**{"data.segment_labels": True, "train.keep_best": "segment_map",
                         "train.early_stopping.patience": 1,
                         "train.early_stopping.metric": "segment_map"})
    assert cfg.train.keep_best == cfg.train.early_stopping.metric == "segment_map"
    with pytest.raises(ConfigError, match=r"'train.keep_best' is 'gap' but a run on rated "
                                          r"segments \(data.segment_labels\) is validated by "
                                          "segment_map"):
        tiny_config(**{"data.segment_labels": True, "train.keep_best": "gap"})
    with pytest.raises(ConfigError, match=r"'train.early_stopping.metric' is 'segment_map' but "
                                          "segment_map is the validation of a run on rated "
                                          "segments"):
        tiny_config(**{"train.early_stopping.patience": 1,
                       "train.early_stopping.metric": "segment_map"})
