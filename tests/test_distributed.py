"""Distribution in real processes: 2 replicas on 2 logical CPU devices train exactly
like 1 replica with the same global batch; 2 workers on 127.0.0.1 train together.

Devices and clusters must be set before TensorFlow starts, so every run here is a
fresh `tools/train.py` process.
"""

import json
import os

import numpy as np
import pytest

from tests.helpers import (
    finish_processes,
    free_ports,
    learnable_records,
    scalar_events,
    start_process,
    write_file,
)
from videotag.training.trainer import load_trained

TINY = ["model.cluster_size=8", "model.groups=4", "model.hidden_size=32", "model.dropout=0.0",
        "data.num_classes=4", "data.max_frames=20", "train.learning_rate=0.01",
        "train.log_every_steps=1", "train.fgm_alpha=0.5",
        "model.input.normalization=none"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    for s in range(2):
        write_file(root / f"train{s}.tfrecord", learnable_records(24, seed=s))
    write_file(root / "validate0.tfrecord", learnable_records(16, seed=9))
    return root


def _train_args(shards, model_dir, *extra, model="NEXTVLAD"):
    return ["tools/train.py", f"--model_name={model}", f"--model_dir={model_dir}",
            f"--train_data_pattern={shards / 'train*.tfrecord'}", "--batch_size=8",
            *[f"--override={o}" for o in TINY], *extra]


# MIX_NEXTVLAD: its members' losses and distillation term cross the replicas too
MODELS = {"NEXTVLAD": [], "MIX_NEXTVLAD": ["--override=model.mix_number=2"]}
TERMS = {"NEXTVLAD": [], "MIX_NEXTVLAD": ["tags_loss", "members_loss", "distillation_loss"]}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_replicas_train_like_one_with_the_same_global_batch(shards, tmp_path, model):
    # FGM on: its input gradient also crosses the replicas (synchronised batch norm)
    procs = [start_process(_train_args(shards, tmp_path / kind, "--epochs=1", "--logical_cpus=2",
                                       f"--distribution={kind}", *MODELS[model], model=model))
             for kind in ("none", "mirrored")]
    for code, _, err in finish_processes(procs):
        assert code == 0, err[-3000:]
    summaries = {k: json.loads((tmp_path / k / "metrics.json").read_text())["summary"]
                 for k in ("none", "mirrored")}
    assert summaries["none"]["replicas"] == 1 and summaries["mirrored"]["replicas"] == 2
    assert summaries["none"]["steps"] == summaries["mirrored"]["steps"] == 6  # 48 videos / 8

    one, two = (scalar_events(tmp_path / k / "logs" / "train") for k in ("none", "mirrored"))
    for tag in ("loss", "clean_loss", "adversarial_loss", "grad_norm", *TERMS[model]):
        assert [s for s, _ in one[tag]] == [s for s, _ in two[tag]] == list(range(1, 7))
        np.testing.assert_allclose([v for _, v in two[tag]], [v for _, v in one[tag]],
                                   rtol=1e-5, err_msg=tag)
    epoch = json.loads((tmp_path / "mirrored" / "metrics.json").read_text())["epochs"][0]
    for tag in TERMS[model]:
        assert epoch[tag] > 0 and f"epoch_{tag}" in two
    _, model_one = load_trained(str(tmp_path / "none"))
    _, model_two = load_trained(str(tmp_path / "mirrored"))
    for weight, a, b in zip(model_one.weights, model_one.get_weights(), model_two.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4, err_msg=weight.path)


def test_two_workers_train_together(shards, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    model_dir = tmp_path / "m"
    # 3 epochs, but early stopping (no gain can exceed min_delta 2) stops after the
    # second: the chief decides for both workers, or the other would wait for it
    args = _train_args(shards, model_dir, "--epochs=3", "--distribution=multi_worker",
                       f"--eval_data_pattern={shards / 'validate*.tfrecord'}",
                       "--override=train.steps_per_epoch=3",
                       "--override=train.mixed_precision=mixed_bfloat16",
                       "--override=train.early_stopping.patience=1",
                       "--override=train.early_stopping.min_delta=2")
    procs = [start_process(args, env={"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    (chief_code, _, chief_err), (code, _, err) = finish_processes(procs, timeout=300)
    assert chief_code == 0, chief_err[-3000:]
    assert code == 0, err[-3000:]
    summary = json.loads((model_dir / "metrics.json").read_text())["summary"]
    assert summary["replicas"] == 2 and summary["epochs"] == 2 and summary["steps"] == 6
    assert summary["stopped_early"].startswith("stopped early at step 6: validation gap")
    assert 0.0 <= summary["validation"]["gap"] <= 1.0
    assert "trained NEXTVLAD: 2 epochs, 6 steps" in chief_err
    # only the chief writes and reports
    assert "trained NEXTVLAD" not in err
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == [
        "ckpt-000000003", "ckpt-000000006"]
    assert not [p for p in os.listdir(model_dir) if p.startswith(".")]
    assert not (model_dir / "train.lock").exists()  # the chief's lock, released


def test_workers_read_disjoint_shares_of_the_data(tmp_path):
    from tests.helpers import frame_record, tiny_config
    from videotag.data import make_dataset

    cfg = tiny_config()
    for f in range(3):
        write_file(tmp_path / f"a{f}.tfrecord",
                   [frame_record(f"f{f}r{r}".encode(), (1,), frames=2) for r in range(4)])

    def ids(pattern, shard):
        ds = make_dataset(cfg.data, str(tmp_path / pattern), 4, training=True, seed=0,
                          num_shards=2, shard_index=shard)
        return sorted(v.decode() for b in ds for v in b["video_id"].numpy())

    # 3 files for 2 workers: whole files (the file list is split before shuffling)
    by_file = [ids("a*.tfrecord", s) for s in (0, 1)]
    assert sorted({v[:2] for v in by_file[0]}) == ["f0", "f2"]
    assert sorted({v[:2] for v in by_file[1]}) == ["f1"]
    # 1 file for 2 workers: every other record
    assert ids("a1.tfrecord", 0) == ["f1r0", "f1r2"] and ids("a1.tfrecord", 1) == ["f1r1", "f1r3"]


def test_a_batch_splits_into_even_consecutive_pieces_per_replica():
    import tensorflow as tf

    from videotag.training.distribution import _split

    batch = ({"x": tf.range(5)}, {"tags": tf.range(5) * 10})
    pieces = list(_split(batch, 2))
    assert [p[0]["x"].numpy().tolist() for p in pieces] == [[0, 1, 2], [3, 4]]
    assert [p[1]["tags"].numpy().tolist() for p in pieces] == [[0, 10, 20], [30, 40]]


def test_multi_worker_needs_tf_config_and_a_fixed_epoch_length(monkeypatch):
    from tests.helpers import tiny_config
    from videotag.errors import ConfigError
    from videotag.training.distribution import make_strategy

    with pytest.raises(ConfigError, match="train.steps_per_epoch"):
        tiny_config(**{"train.distribution": "multi_worker"})
    cfg = tiny_config(**{"train.distribution": "multi_worker", "train.steps_per_epoch": 5})
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        make_strategy(cfg.train)
    monkeypatch.setenv("TF_CONFIG", "{cluster")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        make_strategy(cfg.train)


def test_device_prefetch_changes_no_batch_and_must_not_be_negative():
    import tensorflow as tf

    import videotag
    from videotag.errors import ConfigError
    from videotag.training.distribution import distributed_batches

    data = tf.data.Dataset.range(6).map(lambda i: ({"x": tf.fill([2, 3], i)}, {"tags": [i]}))
    strategy = tf.distribute.get_strategy()
    runs = [[b[0]["x"].numpy().tolist() for b in distributed_batches(
        strategy, 2, lambda n, i, size: data, device_prefetch=p)] for p in (0, 2)]
    assert runs[0] == runs[1] == [[[i] * 3] * 2 for i in range(6)]
    with pytest.raises(ConfigError, match="train.device_prefetch"):
        videotag.config.load("nextvlad_demo", ["train.device_prefetch=-1"])
