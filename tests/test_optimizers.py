"""The optimizers beside Adam (RMSProp as PaddlePaddle defines it, AdamW), the
piecewise-constant schedule by epoch of PaddleVideo, and the moving average of the
weights: kept in checkpoints, validated, saved and exported instead of the raw ones."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import faint_records, random_batch, scalar_events, tiny_config, write_file
from videotag.errors import ConfigError
from videotag.evaluation.evaluator import run_evaluation
from videotag.export import export_saved_model
from videotag.training.schedules import learning_rate_schedule, set_epoch
from videotag.training.step import make_optimizer
from videotag.training.trainer import load_trained, train


def _steps(cfg, grads, start):
    """The weight after applying `grads` one by one with the optimizer of `cfg`."""
    optimizer = make_optimizer(cfg)
    weight = keras.Variable(np.array(start, np.float32))
    optimizer.build([weight])
    for grad in grads:
        optimizer.apply([tf.constant(grad, tf.float32)], [weight])
    return weight.numpy()


def test_rmsprop_and_adamw_steps_follow_their_definitions():
    rng = np.random.default_rng(0)
    start, grads, lr = rng.normal(size=3), rng.normal(size=(3, 3)), 0.01
    # PaddlePaddle's centered RMSProp with its defaults (rho 0.95, epsilon 1e-6):
    # r = rho r + (1 - rho) g^2, m = rho m + (1 - rho) g, w -= lr g / sqrt(r - m^2 + eps)
    cfg = tiny_config(**{"train.optimizer": "{type: rmsprop, centered: true}",
                         "train.learning_rate": lr, "train.lr_decay_examples": 0})
    w, r, m = start.copy(), np.zeros(3), np.zeros(3)
    for g in grads:
        r, m = 0.95 * r + 0.05 * g * g, 0.95 * m + 0.05 * g
        w = w - lr * g / np.sqrt(r - m * m + 1e-6)
    np.testing.assert_allclose(_steps(cfg, grads, start), w, rtol=1e-5)
    # AdamW: decoupled decay w -= lr wd w, then Adam's step
    cfg = tiny_config(**{"train.optimizer": "{type: adamw, weight_decay: 0.1}",
                         "train.learning_rate": lr, "train.lr_decay_examples": 0})
    w, m, v = start.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        w = w - lr * 0.1 * w
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        alpha = lr * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        w = w - alpha * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(_steps(cfg, grads, start), w, rtol=1e-5)


def test_piecewise_schedule_steps_by_epoch_as_paddlevideo():
    values = [2.5e-4, 2.5e-5, 2.5e-6]
    cfg = tiny_config(**{"train.lr_schedule": "piecewise", "train.lr_boundaries": "[5, 8]",
                         "train.lr_values": str(values)})
    schedule = learning_rate_schedule(cfg)
    rates = []
    for epoch in range(10):  # PiecewiseDecay stepped once per epoch: epoch < 5, < 8, else
        set_epoch(schedule, epoch)
        rates.append(float(schedule(123)))
    assert rates == pytest.approx([values[0]] * 5 + [values[1]] * 3 + [values[2]] * 2)
    with pytest.raises(ConfigError, match=r"'train.lr_values' must hold one rate more than"):
        tiny_config(**{"train.lr_schedule": "piecewise", "train.lr_boundaries": "[5, 8]",
                       "train.lr_values": "[0.1, 0.01]"})
    # PaddleVideo's Attention-LSTM recipe, in its configuration: Paddle's rho, and its
    # epsilon 1e-6 scaled to gradients of the batch's mean loss (the reference's: the
    # sum over its 128 videos; see the YAML)
    recipe = videotag.config.load("attention_lstm").train
    assert recipe.optimizer.type == "rmsprop" and recipe.optimizer.params.centered
    assert recipe.batch_size == 128
    assert (recipe.optimizer.params.rho, recipe.optimizer.params.epsilon) == \
        (0.95, 1e-6 / 128 ** 2)
    assert (recipe.lr_boundaries, recipe.lr_values) == ([5, 8], values)


@pytest.fixture(scope="module")
def averaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema")
    write_file(root / "train.tfrecord", faint_records(32, seed=1))
    write_file(root / "val.tfrecord", faint_records(32, seed=2))
    cfg = tiny_config(**{
        "data.train_data_pattern": str(root / "train.tfrecord"),
        "data.eval_data_pattern": str(root / "val.tfrecord"), "data.num_classes": 4,
        "train.ema_decay": 0.5, "train.checkpoint_every_steps": 1, "train.keep_checkpoints": 10,
        "train.optimizer": "{type: rmsprop}", "train.lr_schedule": "piecewise",
        "train.lr_boundaries": "[1]", "train.lr_values": "[0.01, 0.002]",
        "train.epochs": 2, "train.steps_per_epoch": 2, "train.log_every_steps": 1})
    train(cfg, str(root / "m"), verbose=False)
    return root, cfg


def test_the_trainer_steps_the_piecewise_rate_at_each_epoch(averaged):
    root, _ = averaged
    rates = scalar_events(root / "m" / "logs" / "train")["learning_rate"]
    assert [step for step, _ in rates] == [1, 2, 3, 4]  # two epochs of two steps
    assert [rate for _, rate in rates] == pytest.approx([0.01, 0.01, 0.002, 0.002])


def test_the_moving_average_is_what_validation_model_keras_and_export_use(averaged):
    root, cfg = averaged
    model_dir = str(root / "m")
    _, final = load_trained(model_dir)  # model.keras
    raw = []  # the raw trained weights after each of the 4 steps, from the checkpoints
    for step in range(1, 5):
        _, model = load_trained(model_dir, str(root / "m" / "checkpoints" /
                                               f"ckpt-{step:09d}" / "model.keras"))
        raw.append([w.numpy() for w in model.trainable_weights])
    average = raw[0]  # Keras: the first step's weights, then decay * average + (1 - decay) w
    for weights in raw[1:]:
        average = [0.5 * a + 0.5 * w for a, w in zip(average, weights)]
    for got, expected, last in zip(final.trainable_weights, average, raw[-1]):
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-6, err_msg=got.path)
    assert any(not np.allclose(w.numpy(), r) for w, r in zip(final.trainable_weights, raw[-1]))
    # a checkpoint carries the averages: loading it gives them too
    _, latest = load_trained(model_dir, "latest")
    for a, b in zip(latest.weights, final.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # validation scored the averaged weights
    logged = json.loads((root / "m" / "metrics.json").read_text())["epochs"][-1]["validation"]
    assert run_evaluation(final, cfg, verbose=False).metrics["gap"] == pytest.approx(
        logged["gap"], abs=1e-6)
    # the export serves the averaged weights, not the raw ones
    path = export_saved_model(final, cfg, str(root / "exports"), save_keras=False)
    dense = tf.saved_model.load(str(path)).signatures["predict_dense"]
    batch = random_batch(cfg, batch=3, frames=4, seed=1)
    served = dense(**{k: tf.constant(v) for k, v in batch.items()})["embedding"].numpy()
    raw_model = videotag.build_model(cfg)
    raw_model.set_weights([w.numpy() for w in final.weights])
    for variable, value in zip(raw_model.trainable_weights, raw[-1]):
        variable.assign(value)
    np.testing.assert_allclose(served, final(batch)["embedding"].numpy(), atol=1e-5)
    assert not np.allclose(served, raw_model(batch)["embedding"].numpy(), atol=1e-3)
