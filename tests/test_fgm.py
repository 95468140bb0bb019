"""FGM adversarial training: the perturbation, the cut of the model, the losses, a run."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import (
    learnable_records,
    random_batch,
    scalar_events,
    tiny_config,
    write_file,
)
from videotag.data import schema
from videotag.errors import ConfigError
from videotag.layers import Dequantize, FrameMask
from videotag.training.adversarial import SplitModel, fgm_forward, perturbation
from videotag.training.trainer import train


def test_perturbation_is_epsilon_times_the_unit_gradient_per_example():
    g = tf.constant([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0], [-1.0, 0.0]])
    got = perturbation(g, 2.0).numpy()
    # |(3, 4)| = 5 -> 2 * (0.6, 0.8); no gradient or a non-finite one -> no move
    np.testing.assert_allclose(got, [[1.2, 1.6], [0.0, 0.0], [0.0, 0.0], [-2.0, 0.0]], rtol=1e-6)
    # the norm is over every axis but the batch one
    g3 = tf.random.stateless_normal([4, 5, 6], seed=[1, 2])
    r = perturbation(g3, 0.3).numpy()
    np.testing.assert_allclose(np.linalg.norm(r.reshape(4, -1), axis=1), 0.3, rtol=1e-5)
    r, g = r.reshape(4, -1), g3.numpy().reshape(4, -1)
    cosine = np.sum(r * g, 1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1))
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def model_cfg():
    cfg = tiny_config()
    keras.utils.set_random_seed(3)
    return videotag.build_model(cfg), cfg


def _loss_fn(labels):
    return lambda outputs: tf.reduce_mean(keras.losses.binary_crossentropy(labels, outputs["tags"]))


def test_split_model_computes_the_model(model_cfg):
    model, cfg = model_cfg
    split = SplitModel(model)
    assert split.names == ["dequantize_rgb", "frame_mask", "dequantize_audio"]
    assert split.perturbable == ["dequantize_rgb", "dequantize_audio"]
    batch = random_batch(cfg, batch=3, frames=5, num_frames=[5, 2, 1])
    whole = model(batch, training=False)
    parts = split.outputs(split.cut(batch, training=False), training=False)
    for key in ("tags", "embedding"):
        np.testing.assert_array_equal(whole[key].numpy(), parts[key].numpy())
    # the two parts share the model's weights, they do not copy them
    assert {id(v) for v in split.body.weights} <= {id(v) for v in model.weights}


def test_frames_move_by_epsilon_along_the_loss_gradient(model_cfg):
    model, cfg = model_cfg
    split = SplitModel(model)
    batch = random_batch(cfg, batch=3, frames=5, num_frames=[5, 2, 1], seed=4)
    labels = tf.constant(np.eye(cfg.data.num_classes, dtype="float32")[[1, 2, 3]])
    loss_fn = _loss_fn(labels)
    _, _, deltas = fgm_forward(split, batch, loss_fn, epsilon=0.5, training=False)

    # the gradient computed independently: frames dequantized by hand, fed to the body
    frames = {n: tf.constant(schema.dequantize(batch[n])) for n in ("rgb", "audio")}
    mask = tf.sequence_mask(batch["num_frames"], 5)
    with tf.GradientTape() as tape:
        tape.watch(list(frames.values()))
        cut = {"dequantize_rgb": frames["rgb"], "dequantize_audio": frames["audio"],
               "frame_mask": mask}
        loss = loss_fn(split.outputs(cut, training=False))
    grads = dict(zip(frames, tape.gradient(loss, list(frames.values()))))
    for name in ("rgb", "audio"):
        r, g = deltas[f"dequantize_{name}"].numpy(), grads[name].numpy()
        norms = np.linalg.norm(r.reshape(3, -1), axis=1)
        np.testing.assert_allclose(norms, 0.5, rtol=1e-5)
        unit = g / np.linalg.norm(g.reshape(3, -1), axis=1)[:, None, None]
        np.testing.assert_allclose(r, 0.5 * unit, atol=1e-6)
        # padded frames do not count in the loss, so they are not moved
        assert np.all(r[1, 2:] == 0) and np.all(r[2, 1:] == 0)


def test_adversarial_loss_exceeds_the_clean_loss_by_about_epsilon_times_the_gradient(model_cfg):
    model, cfg = model_cfg
    split = SplitModel(model)
    batch = random_batch(cfg, batch=4, frames=6, seed=5)
    labels = tf.constant(np.eye(cfg.data.num_classes, dtype="float32")[[0, 4, 4, 7]])
    sum_loss = lambda out: tf.reduce_sum(  # noqa: E731
        keras.losses.binary_crossentropy(labels, out["tags"]))
    before = [w.numpy() for w in model.weights]
    for epsilon in (1e-3, 0.1, 1.0):
        clean, adversarial, deltas = fgm_forward(split, batch, sum_loss, epsilon, training=False)
        assert float(adversarial) > float(clean), epsilon
    # first order: each example's loss rises by epsilon * |g| per perturbed input
    cut = split.cut(batch, training=False)
    with tf.GradientTape() as tape:
        tape.watch([cut[n] for n in split.perturbable])
        loss = sum_loss(split.outputs(cut, training=False))
    grads = tape.gradient(loss, [cut[n] for n in split.perturbable])
    rise = sum(float(tf.reduce_sum(tf.norm(tf.reshape(g, [4, -1]), axis=1))) for g in grads)
    clean, adversarial, _ = fgm_forward(split, batch, sum_loss, 1e-3, training=False)
    assert float(adversarial - clean) == pytest.approx(1e-3 * rise, rel=0.05)
    # the weights are untouched
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())


def _title_model():
    """A tiny functional model with a title path named as videotag models name it."""
    rgb = keras.Input((None, 4), dtype="uint8", name="rgb")
    num_frames = keras.Input((), dtype="int32", name="num_frames")
    title = keras.Input((None,), dtype="int32", name="title")  # token ids, 0 = padding
    frames = Dequantize(name="dequantize_rgb")(rgb)
    mask = FrameMask(name="frame_mask")(frames, num_frames)
    tokens = keras.layers.Identity(name="title_tokens")(title)
    words = keras.layers.Embedding(20, 3, name="title_embedding")(tokens)
    word_mask = keras.layers.Lambda(lambda t: keras.ops.not_equal(t, 0), name="title_mask")(tokens)
    pooled = keras.layers.Concatenate()([
        keras.layers.GlobalAveragePooling1D()(frames, mask=mask),
        keras.layers.GlobalAveragePooling1D()(words, mask=word_mask)])
    tags = keras.layers.Dense(5, activation="sigmoid", name="tags")(pooled)
    return keras.Model({"rgb": rgb, "num_frames": num_frames, "title": title},
                       {"tags": tags, "embedding": pooled})


def test_title_embeddings_are_perturbed_and_still_learn():
    keras.utils.set_random_seed(0)
    model = _title_model()
    split = SplitModel(model)
    assert split.perturbable == ["dequantize_rgb", "title_embedding"]
    assert set(split.names) == {"dequantize_rgb", "frame_mask", "title_tokens",
                                "title_embedding", "title_mask"}
    rng = np.random.default_rng(0)
    batch = {"rgb": rng.integers(0, 256, (2, 3, 4), dtype=np.uint8),
             "num_frames": np.array([3, 2], np.int32),
             "title": np.array([[3, 7, 0, 0], [5, 0, 0, 0]], np.int32)}
    labels = tf.constant([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0]], tf.float32)
    embedding = model.get_layer("title_embedding").embeddings
    with tf.GradientTape() as tape:
        clean, adversarial, deltas = fgm_forward(split, batch, _loss_fn(labels), 0.2)
        total = clean + adversarial
    r = deltas["title_embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(r.reshape(2, -1), axis=1), 0.2, rtol=1e-5)
    assert np.all(r[0, 2:] == 0) and np.all(r[1, 1:] == 0)  # padding tokens stay
    # the embedding matrix sits before the cut and still gets its gradient
    grad = tape.gradient(total, embedding)
    assert np.any(tf.convert_to_tensor(grad).numpy() != 0)


def test_a_model_without_perturbable_inputs_is_refused():
    x = keras.Input((3,), name="x")
    model = keras.Model({"x": x}, {"tags": keras.layers.Dense(2, activation="sigmoid")(x)})
    with pytest.raises(ConfigError, match="dequantize_<feature>"):
        SplitModel(model)


def test_training_with_fgm_logs_clean_and_adversarial_losses(tmp_path):
    write_file(tmp_path / "train0.tfrecord", learnable_records(48, seed=1))
    write_file(tmp_path / "validate0.tfrecord", learnable_records(16, seed=2))
    cfg = tiny_config(**{
        "data.train_data_pattern": str(tmp_path / "train*.tfrecord"),
        "data.eval_data_pattern": str(tmp_path / "validate*.tfrecord"),
        "train.learning_rate": 0.01, "train.epochs": 2, "train.eval_before_training": True,
        "train.fgm_alpha": 0.5, "train.fgm_epsilon": 2.0, "train.log_every_steps": 1})
    summary = train(cfg, str(tmp_path / "m"), verbose=False)
    assert summary["steps"] == 12
    assert summary["validation"]["gap"] > summary["untrained_validation"]["gap"] + 0.2
    epochs = json.loads((tmp_path / "m" / "metrics.json").read_text())["epochs"]
    for entry in epochs:
        assert entry["adversarial_loss"] > entry["clean_loss"] > 0
        # the objective: clean + alpha * adversarial (+ the head's tiny L2 penalty)
        assert entry["loss"] == pytest.approx(
            entry["clean_loss"] + 0.5 * entry["adversarial_loss"], rel=1e-4)
    assert epochs[1]["clean_loss"] < epochs[0]["clean_loss"]
    events = scalar_events(tmp_path / "m" / "logs" / "train")
    for tag in ("loss", "clean_loss", "adversarial_loss", "learning_rate",
                "examples_per_second", "grad_norm"):
        assert [step for step, _ in events[tag]] == list(range(1, 13)), tag
    assert all(adv > clean for (_, adv), (_, clean) in
               zip(events["adversarial_loss"], events["clean_loss"]))
    validation = scalar_events(tmp_path / "m" / "logs" / "validation")
    assert [step for step, _ in validation["gap"]] == [0, 6, 12]
    assert validation["gap"][-1][1] == pytest.approx(summary["validation"]["gap"])
