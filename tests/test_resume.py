"""Fault tolerance with real processes and SIGKILL: a run killed while saving leaves a
readable latest checkpoint; a run killed mid-epoch resumes, when started again with the
same command, and ends like a run that was never stopped."""

import json
import signal
import textwrap

import numpy as np
import pytest

from tests.helpers import finish_processes, learnable_records, start_process, write_file
from videotag.training.checkpoints import CheckpointStore
from videotag.training.trainer import load_trained

# tools/train.py, killed (SIGKILL, by itself) at a chosen checkpoint save:
# "before N": as the save of step N begins (steps since the last checkpoint are lost);
# "during N": with the weights file of step N half written (before its manifest).
KILLER = textwrap.dedent("""
    import os, runpy, signal, sys
    from videotag.training import checkpoints, manifest

    when, step = sys.argv[1], int(sys.argv[2])
    sys.argv = sys.argv[3:]
    save, build = checkpoints.CheckpointStore.save, manifest.build

    def killing_save(self, model, optimizer, state):
        if when == "before" and state.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return save(self, model, optimizer, state)

    def killing_build(directory, names, at_step):
        if when == "during" and at_step == step:
            weights = os.path.join(directory, "model.keras")
            with open(weights, "rb") as f:
                data = f.read()
            with open(weights, "wb") as f:
                f.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return build(directory, names, at_step)

    checkpoints.CheckpointStore.save = killing_save
    manifest.build = killing_build
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    write_file(root / "train0.tfrecord", learnable_records(48, seed=1))
    write_file(root / "validate0.tfrecord", learnable_records(16, seed=2))
    return root


def _command(shards, model_dir):
    """The same training command every time: 2 epochs of 6 steps, checkpoints every
    4 steps and at each epoch's end."""
    overrides = ["model.cluster_size=8", "model.groups=4", "model.hidden_size=32",
                 "model.dropout=0.0", "data.num_classes=4", "data.max_frames=20",
                 "train.learning_rate=0.01", "train.checkpoint_every_steps=4",
                 "model.input.normalization=none"]
    return ["tools/train.py", "--model_name=NEXTVLAD", f"--model_dir={model_dir}",
            f"--train_data_pattern={shards / 'train*.tfrecord'}",
            f"--eval_data_pattern={shards / 'validate*.tfrecord'}", "--epochs=2",
            "--batch_size=8", *[f"--override={o}" for o in overrides]]


def test_killed_runs_resume_and_end_like_an_uninterrupted_run(shards, tmp_path):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    reference, model_dir = tmp_path / "reference", tmp_path / "killed"
    command = _command(shards, model_dir)
    store = CheckpointStore(model_dir / "checkpoints", writer=False)

    # 1. killed while writing the checkpoint of step 8 (epoch 2), next to the reference run
    (ref_code, _, ref_err), (code, _, err) = finish_processes([
        start_process(_command(shards, reference)),
        start_process([script, "during", 8, *command])])
    assert ref_code == 0, ref_err[-3000:]
    assert code == -signal.SIGKILL, err[-3000:]
    partial = list((model_dir / "checkpoints").glob(".ckpt-000000008.tmp-*/model.keras"))
    assert len(partial) == 1  # the half-written weights are there, under a temporary name
    assert store.latest().endswith("ckpt-000000006")  # the latest is the previous, whole one
    _, model = load_trained(str(model_dir))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())

    # 2. the same command resumes from step 6, and is killed as it saves step 12,
    # mid-way through epoch 2: steps 9-12 are lost, step 8 is the latest checkpoint
    (code, _, err), = finish_processes([start_process([script, "before", 12, *command])])
    assert code == -signal.SIGKILL, err[-3000:]
    assert "resuming from" in err and "ckpt-000000006" in err
    # the lock the killed run left is taken over: its process is gone
    assert "taking over" in err and "there is no process" in err
    assert not list((model_dir / "checkpoints").glob(".ckpt-*"))  # the partial one is gone
    state = json.loads(open(f"{store.latest()}/state.json").read())
    assert store.latest().endswith("ckpt-000000008")
    assert (state["epoch"], state["step_in_epoch"], len(state["history"])) == (1, 2, 1)

    # 3. the same command again, undisturbed, finishes the run
    (code, _, err), = finish_processes([start_process(command)])
    assert code == 0, err[-3000:]
    assert "epoch 2, step 2 of the epoch, 8 steps done" in err
    resumed = json.loads((model_dir / "metrics.json").read_text())
    uninterrupted = json.loads((reference / "metrics.json").read_text())
    assert resumed["summary"]["steps"] == uninterrupted["summary"]["steps"] == 12
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    # the same videos in the same order after the resume: the same model
    for a, b in zip(resumed["epochs"], uninterrupted["epochs"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["validation"]["gap"] == pytest.approx(b["validation"]["gap"], abs=1e-4)
    _, ours = load_trained(str(model_dir))
    _, theirs = load_trained(str(reference))
    for weight, a, b in zip(ours.weights, ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=weight.path)
