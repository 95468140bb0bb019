"""Warm start (`--init_from`): a model trained on one label set fine-tuned on another
with a different number of classes, the head initialised anew, the rest loaded, the
frozen layers unchanged bit for bit; the sources it takes; resume wins over it."""

import contextlib
import io

import keras
import numpy as np
import pytest

import videotag
from tests.helpers import learnable_records, tiny_config, write_file
from videotag.data.sources import resolve_data
from videotag.errors import ModelError
from videotag.training.trainer import load_trained, train
from videotag.training.warm_start import by_path, warm_start

HEAD = ["tags/logits/kernel", "tags/logits/bias"]
FROZEN = ["nextvlad_*", "vlad_bn_*", "context_gating"]


def _cfg(pattern, classes, **kw):
    base = {"data.train_data_pattern": str(pattern), "data.num_classes": classes,
            "train.learning_rate": 0.01, "train.tensorboard": False}
    base.update(kw)
    return tiny_config(**base)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("fine_tuning")
    write_file(root / "four.tfrecord", learnable_records(32, num_classes=4, frames=5, seed=3))
    write_file(root / "six.tfrecord", learnable_records(24, num_classes=6, frames=5, seed=4))
    train(_cfg(root / "four.tfrecord", 4), str(root / "source"), verbose=False)
    _, model = load_trained(str(root / "source"))
    return root, by_path(model)


def _fresh(cfg):
    """The target model as the trainer builds it, before any weight is loaded."""
    keras.utils.set_random_seed(cfg.train.seed)
    return videotag.build_model(resolve_data(cfg, verbose=False))


def test_warm_start_loads_what_matches_and_keeps_the_new_head(source):
    root, weights = source
    model = _fresh(_cfg(root / "six.tfrecord", 6))
    head = {v.path: v.numpy() for v in model.weights if v.path in HEAD}
    for where in (root / "source", root / "source" / "model.keras",
                  root / "source" / "checkpoints" / "ckpt-000000004"):
        report = warm_start(model, str(where))
        assert report.skipped == [("tags/logits/kernel", (32, 4), (32, 6)),
                                  ("tags/logits/bias", (4,), (6,))]
        assert report.new == [] and report.unused == []
        assert report.loaded == [v.path for v in model.weights if v.path not in HEAD]
        for variable in model.weights:
            expected = head[variable.path] if variable.path in HEAD else weights[variable.path]
            np.testing.assert_array_equal(variable.numpy(), expected, err_msg=variable.path)
    text = report.report()
    assert f"loaded {len(model.weights) - 2} weights" in text and "skipped 2 (shape differs)" in text
    assert "skipped tags/logits/kernel: [32, 4] in the source, [32, 6] here" in text


def test_fine_tuning_onto_other_labels_keeps_frozen_layers_bit_for_bit(source):
    root, weights = source
    cfg = _cfg(root / "six.tfrecord", 6, **{"train.init_from": str(root / "source"),
                                            "train.freeze": FROZEN, "train.epochs": 2})
    head = {v.path: v.numpy() for v in _fresh(cfg).weights if v.path in HEAD}
    summary = train(cfg, str(root / "tuned"), verbose=False)
    started = summary["warm_start"]
    assert [s["path"] for s in started["skipped"]] == HEAD and started["new"] == []
    assert len(started["loaded"]) == len(weights) - 2
    _, tuned = load_trained(str(root / "tuned"))
    frozen = [v for v in tuned.weights if v.path.split("/")[0].startswith(
        ("nextvlad_", "vlad_bn_", "context_gating"))]
    # the poolings, their batch norms and the gate (no excitation bias): every weight
    assert len(frozen) == 34
    for variable in frozen:  # batch-norm moving statistics included
        np.testing.assert_array_equal(variable.numpy(), weights[variable.path],
                                      err_msg=variable.path)
    trained = {v.path: v.numpy() for v in tuned.weights}
    for path in ("hidden/kernel", *HEAD):  # the rest trained, from the loaded weights
        start = head[path] if path in HEAD else weights[path]
        assert not np.array_equal(trained[path], start), path
    # run again, the run's own checkpoints win over the warm start (and nothing is left)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        again = train(cfg, str(root / "tuned"))
    assert "warm_start" not in again
    assert (f"train.init_from ({root / 'source'}) is not used: the run resumes its own "
            "checkpoint") in stderr.getvalue()


def test_a_source_that_matches_nothing_is_an_error(source, tmp_path):
    root, _ = source
    model = _fresh(_cfg(root / "six.tfrecord", 6))
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="other")])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ModelError, match=r"no weight of .*other.keras matches the model"):
        warm_start(model, str(tmp_path / "other.keras"))
    with pytest.raises(ModelError, match=r"train.init_from: .*nowhere is not a model directory"):
        warm_start(model, str(tmp_path / "nowhere"))
