"""The trainer in-process: it learns, schedules, checkpoints, and handles bad records."""

import itertools
import json

import keras
import numpy as np
import pytest

from tests.helpers import frame_record, tiny_config, write_file
from videotag.errors import DataError, ModelError
from videotag.training.loop import epoch_steps
from videotag.training.trainer import learning_rate_schedule, load_trained, train

_PROTOTYPES = np.random.default_rng(123).integers(40, 216, (10, 1024 + 128))


def _records(n, seed=0, bad_at=None):
    """Records whose label is readable from the frames: noisy copies of a class prototype."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c = int(rng.integers(0, 10))
        frames = int(rng.integers(1, 12))
        x = np.clip(_PROTOTYPES[c] + rng.normal(0, 30, (frames, 1024 + 128)), 0, 255)
        rgb, audio = x[:, :1024].astype(np.uint8), x[:, 1024:].astype(np.uint8)
        labels = (c,) if i != bad_at else (c, 77)
        out.append(frame_record(f"v{i}".encode(), labels, rgb=rgb, audio=audio))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    train_files = [write_file(root / f"train{s}.tfrecord", _records(48, seed=s)) for s in range(2)]
    write_file(root / "validate0.tfrecord", _records(64, seed=9))
    write_file(root / "bad0.tfrecord", _records(24, seed=3, bad_at=5))
    return root, train_files


def _cfg(root, **kw):
    base = {"data.train_data_pattern": str(root / "train*.tfrecord"),
            "data.eval_data_pattern": str(root / "validate*.tfrecord"),
            "train.learning_rate": 0.01, "train.eval_before_training": True,
            "train.epochs": 3}
    base.update(kw)
    return tiny_config(**base)


def test_training_learns_and_checkpoints(data, tmp_path):
    root, _ = data
    summary = train(_cfg(root), str(tmp_path / "m"), verbose=False)
    assert summary["steps"] == 3 * 12  # 96 videos / batch 8, 3 epochs
    before, after = summary["untrained_validation"]["gap"], summary["validation"]["gap"]
    assert after > before + 0.3, (before, after)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    # the checkpoints of the epochs, and the final model, hold the trained weights
    # a checkpoint at the end of each epoch (3 kept), with its step, epoch and history
    ckpts = sorted(p.name for p in (tmp_path / "m" / "checkpoints").iterdir())
    assert ckpts == ["ckpt-000000012", "ckpt-000000024", "ckpt-000000036"]
    state = json.loads((tmp_path / "m/checkpoints/ckpt-000000036/state.json").read_text())
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (36, 3, 0)
    assert [e["epoch"] for e in state["history"]] == [1, 2, 3]
    # what the next epoch's length is taken from (a run resumed on other data or
    # batches does not take it)
    source = {"train_data": str(root / "train*.tfrecord"), "batch_size": 8}
    assert all({k: e[k] for k in source} == source for e in state["history"])
    assert epoch_steps(state["history"], source) == 12
    assert epoch_steps(state["history"], {**source, "batch_size": 16}) is None
    assert epoch_steps(state["history"], {**source, "train_data": "other*"}) is None
    assert epoch_steps([], source) is None
    cfg, model = load_trained(str(tmp_path / "m"))
    for checkpoint in ("ckpt-000000036", "ckpt-000000036/model.keras"):
        _, from_ckpt = load_trained(str(tmp_path / "m"),
                                    checkpoint=str(tmp_path / "m/checkpoints" / checkpoint))
        for a, b in zip(model.get_weights(), from_ckpt.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_bad_training_record_stops_naming_the_file(data, tmp_path):
    root, _ = data
    cfg = _cfg(root, **{"data.train_data_pattern": str(root / "bad*.tfrecord"),
                        "train.eval_before_training": False})
    with pytest.raises(DataError, match=r"bad0.tfrecord: record 5 \(id v5\).*\[77\] outside"):
        train(cfg, str(tmp_path / "m"), verbose=False)


def test_skip_mode_reports_skipped_records(data, tmp_path):
    root, _ = data
    cfg = _cfg(root, **{"data.train_data_pattern": str(root / "bad*.tfrecord"),
                        "data.on_bad_record": "skip", "train.epochs": 2,
                        "train.eval_before_training": False})
    summary = train(cfg, str(tmp_path / "m"), verbose=False)
    assert summary["skipped_records_per_epoch"] == {"label_out_of_range": 1}
    assert summary["steps"] == 2 * 3  # 23 good records / batch 8 -> 3 batches per epoch


def test_learning_rate_decays_per_examples():
    cfg = tiny_config(**{"train.learning_rate": 0.1, "train.lr_decay": 0.5,
                         "train.lr_decay_examples": 80, "train.batch_size": 8})
    schedule = learning_rate_schedule(cfg)
    # x0.5 every 80 examples = every 10 steps of 8, staircase
    assert float(schedule(9)) == pytest.approx(0.1)
    assert float(schedule(10)) == pytest.approx(0.05)
    assert float(schedule(25)) == pytest.approx(0.025)
    assert learning_rate_schedule(tiny_config(**{"train.lr_decay_examples": 0})) == pytest.approx(2e-4)


def test_load_trained_errors(tmp_path):
    with pytest.raises(ModelError, match="no config.yaml"):
        load_trained(str(tmp_path))
    tiny_config().save(tmp_path / "config.yaml")
    with pytest.raises(ModelError, match="no checkpoint"):
        load_trained(str(tmp_path))


def test_paper_size_model_takes_a_training_step():
    import videotag

    cfg = videotag.config.load("nextvlad", ["model.input.normalization=none"])  # no eigenvals.npy here
    model = videotag.build_model(cfg)
    model.compile(optimizer="adam", loss={"tags": keras.losses.BinaryCrossentropy()})
    rng = np.random.default_rng(0)
    x = {"rgb": rng.integers(0, 256, (2, 4, 1024), dtype=np.uint8),
         "audio": rng.integers(0, 256, (2, 4, 128), dtype=np.uint8),
         "num_frames": np.array([4, 2], np.int32)}
    y = {"tags": (rng.random((2, 3862)) < 0.01).astype("float32")}
    before = model.get_layer("tags").dense.kernel.numpy().copy()
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.array_equal(before, model.get_layer("tags").dense.kernel.numpy())


def test_progress_log_prints_steps_and_rate(capsys):
    from videotag.training.logs import EpochProgress

    clock = itertools.count(0.0, 30.0)  # 30 s per step: a line after each
    log = EpochProgress(verbose=True, batch_size=16, epochs=5, mode="lines",
                        clock=lambda: next(clock))
    log.epoch_begin(2, None)
    log.step(1, {"loss": 0.5})
    log.step(2, {"loss": 0.25})
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("epoch 3 step 1, loss 0.5000, ") and err[0].endswith(" examples/s")
    assert err[1].startswith("epoch 3 step 2, loss 0.2500, ")
