"""Losses, schedules, weight decay and clipping of the training step, by hand."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import random_batch, tiny_config
from videotag.training.losses import decayed_variables, weight_decay_loss, weighted_loss
from videotag.training.schedules import learning_rate_schedule
from videotag.training.step import TrainStep, make_optimizer


def test_cosine_schedule_with_warm_up():
    cfg = tiny_config(**{"train.learning_rate": 0.1, "train.batch_size": 8,
                         "train.lr_schedule": "cosine", "train.lr_warmup_examples": 40,
                         "train.cosine_decay_examples": 80, "train.lr_final_ratio": 0.1})
    lr = learning_rate_schedule(cfg)
    # 5 warm-up steps of 8 examples: 0.02, 0.04, ... 0.1; then 10 cosine steps to 0.01
    for step, want in [(0, 0.02), (2, 0.06), (4, 0.1), (5, 0.1),
                       (10, 0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))),
                       (15, 0.01), (100, 0.01)]:
        assert float(lr(step)) == pytest.approx(want, rel=1e-5), step


def test_exponential_schedule_per_examples_with_warm_up():
    cfg = tiny_config(**{"train.learning_rate": 0.1, "train.batch_size": 8, "train.lr_decay": 0.5,
                         "train.lr_decay_examples": 80, "train.lr_warmup_examples": 16})
    lr = learning_rate_schedule(cfg)
    # 2 warm-up steps, then x0.5 every 10 steps, counted from the end of the warm-up
    assert [float(lr(s)) for s in (0, 1, 2, 11, 12, 22)] == pytest.approx(
        [0.05, 0.1, 0.1, 0.1, 0.05, 0.025])


def test_cosine_length_defaults_to_the_run():
    cfg = tiny_config(**{"train.learning_rate": 1.0, "train.lr_schedule": "cosine",
                         "train.steps_per_epoch": 5, "train.epochs": 2})
    lr = learning_rate_schedule(cfg)
    assert float(lr(5)) == pytest.approx(0.5) and float(lr(10)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(videotag.errors.ConfigError, match="cosine_decay_examples"):
        tiny_config(**{"train.lr_schedule": "cosine"})


def test_multi_task_loss_is_the_weighted_sum_per_example():
    cfg = tiny_config(**{"data.num_categories": 3, "model.head.tasks": "[tags, category]",
                         "model.head.tags_weight": 2.0, "model.head.category_weight": 0.5})
    outputs = {"tags": tf.constant([[0.8, 0.1], [0.5, 0.5]]),
               "category": tf.constant([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])}
    targets = {"tags": tf.constant([[1.0, 0.0], [0.0, 1.0]]), "category": tf.constant([0, 1])}
    got = weighted_loss(cfg, outputs, targets).numpy()
    bce = [-(math.log(0.8) + math.log(0.9)) / 2, -math.log(0.5)]
    ce = [-math.log(0.7), -math.log(0.1)]
    np.testing.assert_allclose(got, [2 * b + 0.5 * c for b, c in zip(bce, ce)], rtol=1e-5)


def _step(cfg, seed=0):
    keras.utils.set_random_seed(seed)
    model = videotag.build_model(cfg)
    optimizer = make_optimizer(cfg)
    optimizer.build(model.trainable_variables)
    return model, optimizer, TrainStep(cfg, model, optimizer, tf.distribute.get_strategy())


def _batch(cfg):
    inputs = {k: tf.constant(v) for k, v in random_batch(cfg, batch=4, frames=5, seed=2).items()}
    labels = np.zeros((4, cfg.data.num_classes), np.float32)
    labels[[0, 1, 2, 3], [1, 3, 3, 8]] = 1
    return inputs, {"tags": tf.constant(labels)}


def test_weight_decay_adds_its_penalty_on_matrices():
    base = tiny_config()
    decayed = tiny_config(**{"train.weight_decay": 0.5})
    model, _, plain_step = _step(base)
    names = {v.path for v in decayed_variables(model)}
    assert "hidden/kernel" in names and "nextvlad_rgb/centers" in names
    assert not any(n.endswith(("bias", "gamma", "beta")) for n in names)
    penalty = 0.5 * sum(float(np.sum(np.square(v.numpy()))) for v in decayed_variables(model))
    assert float(weight_decay_loss(decayed_variables(model), 0.5)) == pytest.approx(penalty,
                                                                                     rel=1e-5)
    _, _, decayed_step = _step(decayed)  # same seed: same initial weights
    batch = _batch(base)
    plain, with_decay = plain_step(batch), decayed_step(batch)
    assert float(with_decay["loss"] - plain["loss"]) == pytest.approx(penalty, rel=1e-4)
    assert float(with_decay["clean_loss"]) == pytest.approx(float(plain["clean_loss"]), rel=1e-6)


def test_gradients_are_clipped_by_their_global_norm():
    cfg = tiny_config(**{"train.clip_gradient_norm": 1e-3, "train.learning_rate": 0.01})
    model, optimizer, step = _step(cfg)
    values = step(_batch(cfg))
    assert float(values["grad_norm"]) > 0.01  # well above the clip
    # after one step Adam's first moment is 0.1 * the clipped gradient: its global
    # norm is 0.1 * 1e-3 (clipping variable by variable would give more)
    momentum = tf.linalg.global_norm([tf.convert_to_tensor(m) for m in optimizer._momentums])
    assert float(momentum) == pytest.approx(1e-4, rel=1e-4)


def test_gradients_are_clipped_variable_by_variable():
    # the YT8M starter code's clipping (tf.clip_by_norm of each gradient)
    cfg = tiny_config(**{"train.clip_gradient_norm": 1e-3, "train.learning_rate": 0.01,
                         "train.clip_gradient_per_variable": True})
    model, optimizer, step = _step(cfg)
    step(_batch(cfg))
    norms = [float(tf.norm(tf.convert_to_tensor(m))) for m in optimizer._momentums]
    # Adam's first moment is 0.1 * each clipped gradient: none above 0.1 * 1e-3, most at it
    assert max(norms) == pytest.approx(1e-4, rel=1e-4)
    assert sum(n > 0.99e-4 for n in norms) > len(norms) / 2
    global_norm = math.sqrt(sum(n * n for n in norms))
    assert global_norm > 2e-4  # more than clipping by the global norm would leave


def test_tags_loss_summed_over_the_classes():
    outputs = {"tags": tf.constant([[0.8, 0.1], [0.5, 0.5]])}
    targets = {"tags": tf.constant([[1.0, 0.0], [0.0, 1.0]])}
    mean = weighted_loss(tiny_config(**{"data.num_classes": 2}), outputs, targets).numpy()
    summed = weighted_loss(tiny_config(**{"data.num_classes": 2, "model.head.tags_loss": "sum"}),
                           outputs, targets).numpy()
    bce = [-(math.log(0.8) + math.log(0.9)), -2 * math.log(0.5)]  # summed over the classes
    np.testing.assert_allclose(summed, bce, rtol=1e-5)
    np.testing.assert_allclose(mean, np.array(bce) / 2, rtol=1e-5)


def test_large_gradients_are_clipped_like_clip_by_norm():
    # a gradient of 2^20 entries takes the branch that skips the product within the limit
    from videotag.training.step import clipped_by_norm

    rng = np.random.default_rng(0)
    gradient = tf.constant(rng.normal(size=(1024, 1024)).astype("float32"))
    square = 2.0 * tf.nn.l2_loss(gradient)  # norm about 1024
    for limit in (1.0, 1e4):
        got = clipped_by_norm(gradient, square, limit).numpy()
        np.testing.assert_allclose(got, tf.clip_by_norm(gradient, limit).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(clipped_by_norm(gradient, square, 1e4).numpy(), gradient.numpy())
