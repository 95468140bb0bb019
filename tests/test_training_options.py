"""Runs with the trainer's options: a loss that becomes NaN, mixed precision, XLA."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import learnable_records, scalar_events, tiny_config, write_file
from videotag.errors import ConfigError, TrainingError
from videotag.training.checkpoints import CheckpointStore
from videotag.training.trainer import load_trained, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    write_file(root / "train0.tfrecord", learnable_records(32, frames=5, seed=7))
    return root


def _cfg(root, **kw):
    base = {"data.train_data_pattern": str(root / "train*.tfrecord"),
            "train.learning_rate": 0.01, "train.log_every_steps": 1}
    base.update(kw)
    return tiny_config(**base)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(shards, tmp_path):
    model_dir = str(tmp_path / "m")
    train(_cfg(shards), model_dir, verbose=False)  # one good epoch: ckpt-000000004
    # resumed with an absurd perturbation, the first step's loss overflows; a checkpoint
    # is due after every step, and the weights that step produced must not be saved
    bad = _cfg(shards, **{"train.epochs": 2, "train.checkpoint_every_steps": 1,
                          "train.fgm_alpha": 1.0, "train.fgm_epsilon": 1e38})
    with pytest.raises(TrainingError, match=r"the loss .*became (nan|inf) at step 5 \(epoch 2, "
                                            r"step 1 of the epoch\).*ckpt-000000004 \(step 4\), "
                                            r"is kept"):
        train(bad, model_dir, verbose=False)
    store = CheckpointStore(tmp_path / "m" / "checkpoints", writer=False)
    assert os.path.basename(store.latest()) == "ckpt-000000004"
    _, model = load_trained(model_dir, checkpoint=str(store.latest()))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert "became" in json.loads((tmp_path / "m" / "metrics.json").read_text())["stopped"]
    # the run goes on from the last good checkpoint once the config is sane again
    summary = train(_cfg(shards, **{"train.epochs": 2}), model_dir, verbose=False)
    assert summary["steps"] == 8 and np.isfinite(summary["final_loss"])
    # another model cannot take over the directory's checkpoints
    with pytest.raises(ConfigError, match=r"holds checkpoints of another model: config key "
                                          r"'model.hidden_size' was 32, is now 16"):
        train(_cfg(shards, **{"model.hidden_size": 16}), model_dir, verbose=False)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_with_fgm_trains_and_saves_a_float32_model(shards, tmp_path, policy):
    cfg = _cfg(shards, **{"train.mixed_precision": policy, "train.fgm_alpha": 1.0,
                          "train.epochs": 2})
    summary = train(cfg, str(tmp_path / "m"), verbose=False)
    epochs = json.loads((tmp_path / "m" / "metrics.json").read_text())["epochs"]
    assert summary["steps"] == 8
    assert all(np.isfinite(e["loss"]) and e["adversarial_loss"] > 0 for e in epochs)
    assert epochs[1]["clean_loss"] < epochs[0]["clean_loss"]
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    _, model = load_trained(str(tmp_path / "m"))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    store = CheckpointStore(tmp_path / "m" / "checkpoints", writer=False)
    with np.load(os.path.join(store.latest(), "optimizer.npz")) as saved:
        # Adam: the step count and two moments per weight; float16 adds the loss scale
        adam = 2 * len(model.trainable_variables) + 1
        if policy == "mixed_float16":
            assert len(saved.files) > adam
        else:
            assert len(saved.files) == adam


def test_xla_step_gives_the_losses_of_the_plain_step_and_tensorboard_logs(shards, tmp_path):
    losses = {}
    for jit in (False, True):
        cfg = _cfg(shards, **{"train.jit_compile": jit, "data.pad_to_max_frames": True,
                              "train.log_every_steps": 2})
        train(cfg, str(tmp_path / f"m{jit}"), verbose=False)
        losses[jit] = json.loads((tmp_path / f"m{jit}" / "metrics.json").read_text())["epochs"]
    assert losses[True][0]["loss"] == pytest.approx(losses[False][0]["loss"], rel=1e-3)

    events = scalar_events(tmp_path / "mFalse" / "logs" / "train")
    steps = {tag: [step for step, _ in values] for tag, values in events.items()}
    assert steps["loss"] == steps["learning_rate"] == steps["examples_per_second"] == [2, 4]
    assert steps["epoch_loss"] == [4]
    assert events["learning_rate"][0][1] == pytest.approx(0.01)
    assert "adversarial_loss" not in steps  # FGM off
    for path in (tmp_path / "mFalse" / "logs" / "train").glob("events*"):
        for record in tf.data.TFRecordDataset(str(path)):
            for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"  # for TensorBoard
    # TensorBoard itself (the `tensorboard` extra) shows them on its scalars dashboard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "mFalse" / "logs" / "train")).Reload()
    assert set(board.PluginTagToContent("scalars")) == set(steps)
    assert [event.step for event in board.Tensors("loss")] == [2, 4]
    assert float(tf.make_ndarray(board.Tensors("learning_rate")[0].tensor_proto)) == \
        pytest.approx(0.01)


def test_frozen_layers_keep_their_weights_bit_for_bit(shards, tmp_path):
    import videotag
    from videotag.data.sources import resolve_data

    cfg = _cfg(shards, **{"train.freeze": ["nextvlad_*", "context_gating"], "train.epochs": 2})
    keras.utils.set_random_seed(cfg.train.seed)  # what the trainer does before building
    initial = videotag.build_model(resolve_data(cfg, verbose=False))
    train(cfg, str(tmp_path / "m"), verbose=False)
    _, trained = load_trained(str(tmp_path / "m"))
    frozen = ["nextvlad_rgb", "nextvlad_audio", "context_gating"]
    for name in frozen:  # every weight, batch-norm moving statistics included
        for before, after in zip(initial.get_layer(name).weights,
                                 trained.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(before.numpy(), after.numpy(), err_msg=before.path)
    for name in ("hidden", "tags"):  # the rest trains
        assert any(not np.array_equal(b.numpy(), a.numpy()) for b, a in zip(
            initial.get_layer(name).weights, trained.get_layer(name).weights))


def test_a_freeze_pattern_that_matches_nothing_is_an_error(shards, tmp_path):
    with pytest.raises(ConfigError, match=r"config key 'train.freeze' has the pattern 'nope\*', "
                                          r"which matches no layer of nextvlad \(its layers: "):
        train(_cfg(shards, **{"train.freeze": ["nope*"]}), str(tmp_path / "m"), verbose=False)
