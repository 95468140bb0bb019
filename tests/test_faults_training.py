"""The faults of a long training run, each made real in its own process and checked
by its message, exit status and what is left on disk: two runs racing for one model
directory, a cluster whose chief cannot take the lock, damaged checkpoints, a file
system that fills up, SIGTERM/SIGINT, and a model directory on a non-POSIX file
system (ram://). The lock and the signal handler alone: tests/test_faults_in_process.py."""

import json
import os
import shutil
import signal
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (finish_processes, free_ports, learnable_records,
                           small_filesystem_prefix, start_process, tiny_config, write_file,
                           write_lock)
from videotag import filesystem
from videotag.training import lock as lock_lib, manifest
from videotag.training.checkpoints import CheckpointStore
from videotag.training.trainer import load_trained, train

# tools/train.py with a fault made at a chosen moment (argv: kind, argument, command):
# "sigterm N": SIGTERM to itself, from another thread, as training step N starts;
# "sigint-validation": SIGINT to itself as the first validation starts;
# "sigterm-hang N": as "sigterm N", and the checkpoint of step N never ends;
# "sigterm-final N": SIGTERM as the final model.keras is written, which takes N s
#   (its temporary file begun);
# "fill N": the disk filled up right after the free-space check of checkpoint N
# ("fill model.keras": of the final model file).
FAULTS = textwrap.dedent("""
    import os, runpy, shutil, signal, sys, threading, time
    from videotag.training import checkpoints, loop, step, storage

    kind, argument = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[3:]

    def send(signum):
        print(f"sending {signal.Signals(signum).name} at {time.time():.3f}", file=sys.stderr,
              flush=True)
        threading.Thread(target=os.kill, args=(os.getpid(), signum)).start()

    if kind == "sigterm-final":
        from videotag.training import trainer
        save_model = trainer.save_model_file

        def slow(model, path):
            send(signal.SIGTERM)
            # a slow store: the write under way (its temporary file begun) when
            # train.stop_timeout_seconds ends the process
            with open(trainer.filesystem.temporary_name(path, ".keras"), "wb") as f:
                f.write(b"the first bytes of a model file")
            time.sleep(float(argument))
            return save_model(model, path)

        trainer.save_model_file = slow
    elif kind.startswith("sigterm"):
        calls, original = [0], step.TrainStep.__call__

        def counting(self, batch):
            calls[0] += 1
            if calls[0] == int(argument):
                send(signal.SIGTERM)
            return original(self, batch)

        step.TrainStep.__call__ = counting
        save = checkpoints.CheckpointStore.save

        def hanging(self, model, optimizer, state):
            if kind == "sigterm-hang" and state.global_step == int(argument):
                time.sleep(600)
            return save(self, model, optimizer, state)

        checkpoints.CheckpointStore.save = hanging
    elif kind == "sigint-validation":
        evaluate = loop.evaluate

        def interrupted(*args, **kwargs):
            send(signal.SIGINT)
            return evaluate(*args, **kwargs)

        loop.evaluate = interrupted
    elif kind == "fill":
        check = storage.check_space
        target = f"ckpt-{int(argument):09d}" if argument.isdigit() else argument

        def check_then_fill(directory, needed, what, kept):
            check(directory, needed, what, kept)
            if what.endswith(target):
                free = shutil.disk_usage(directory).free
                with open(os.path.join(directory, "filler"), "wb") as f:
                    f.write(bytes(free - (256 << 10)))  # leave 256 KB

        storage.check_space = check_then_fill
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    write_file(root / "train0.tfrecord", learnable_records(48, seed=1))
    write_file(root / "validate0.tfrecord", learnable_records(16, seed=2))
    (root / "faults.py").write_text(FAULTS)
    return root


def _command(shards, model_dir, epochs=1, every=2, extra=()):
    """The training command: epochs of 6 steps, a checkpoint every `every` steps."""
    overrides = ["model.cluster_size=8", "model.groups=4", "model.hidden_size=32",
                 "model.dropout=0.0", "data.num_classes=4", "data.max_frames=20",
                 "train.learning_rate=0.01", f"train.checkpoint_every_steps={every}",
                 "model.input.normalization=none", *extra]
    return ["tools/train.py", "--model_name=NEXTVLAD", f"--model_dir={model_dir}",
            f"--train_data_pattern={shards / 'train*.tfrecord'}",
            f"--eval_data_pattern={shards / 'validate*.tfrecord'}", f"--epochs={epochs}",
            "--batch_size=8", *[f"--override={o}" for o in overrides]]


def _faulty(shards, kind, argument, command):
    return [shards / "faults.py", kind, argument, *command]


def _intact(model_dir):
    """{checkpoint name: problems} of every checkpoint in `model_dir`."""
    store = CheckpointStore(os.path.join(model_dir, "checkpoints"), writer=False)
    return {os.path.basename(p): manifest.problems(p) for p in store.all()}


def _leftovers(model_dir):
    """Temporary files and locks left in `model_dir`."""
    return sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*")
                  if ".tmp" in p.name or p.name == "train.lock" or ".old-" in p.name)


@pytest.fixture(scope="module")
def raced(shards, tmp_path_factory):
    """Two runs of one command started together on one model directory."""
    model_dir = tmp_path_factory.mktemp("raced") / "model"
    procs = [start_process(_command(shards, model_dir)) for _ in range(2)]
    ended = {}
    while len(ended) < 2:
        for proc in procs:
            if proc.pid not in ended and proc.poll() is not None:
                ended[proc.pid] = time.monotonic()
        time.sleep(0.05)
    results = finish_processes(procs)
    return model_dir, procs, results, ended


def test_two_runs_on_one_model_dir_one_stops_at_once(raced):
    model_dir, procs, results, ended = raced
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], [r[2][-2000:] for r in results]
    (winner, (_, _, won)), (loser, (_, _, lost)) = sorted(
        zip(procs, results), key=lambda pair: pair[1][0])
    # one line naming the holder (host and pid), no traceback; it stopped before training
    message = [line for line in lost.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and "Traceback" not in lost, lost[-2000:]
    holder = f"is in use by another training run (host {lock_lib.HOST}, pid {winner.pid},"
    assert holder in message[0]
    assert "train.lock" in message[0] and "epoch 1" not in lost
    assert ended[loser.pid] < ended[winner.pid]
    # the winner's checkpoints alone, all intact; the lock released
    assert _intact(model_dir) == {"ckpt-000000002": [], "ckpt-000000004": [],
                                  "ckpt-000000006": []}
    assert json.loads((model_dir / "metrics.json").read_text())["summary"]["steps"] == 6
    assert _leftovers(model_dir) == []


def test_a_cluster_shares_one_lock_taken_by_its_chief(shards, tmp_path):
    """Two workers on a model directory that another run holds: the chief cannot take
    the lock, and both workers stop (the other one told so by the chief)."""
    model_dir = tmp_path / "model"
    write_lock(model_dir, host="elsewhere", pid=4321, heartbeat=time.time())
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    command = _command(shards, model_dir, extra=["train.distribution=multi_worker",
                                                 "train.steps_per_epoch=2"])
    procs = [start_process(command, env={"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    (chief, _, chief_err), (worker, _, worker_err) = finish_processes(procs, timeout=120)
    assert (chief, worker) == (1, 1), (chief_err[-2000:], worker_err[-2000:])
    assert chief_err.strip().splitlines()[-1].startswith(
        f"error: {model_dir} is in use by another training run (host elsewhere, pid 4321")
    assert worker_err.strip().splitlines()[-1] == (
        f"error: the chief could not take the lock of {model_dir} (see its message)")
    assert json.loads((model_dir / "train.lock").read_text())["token"] == "theirs"
    assert not (model_dir / "checkpoints").exists()


@pytest.fixture
def damaged_copy(raced, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(raced[0], model_dir)
    return model_dir


def test_damaged_newest_checkpoint_falls_back_to_an_intact_one(shards, damaged_copy):
    model_dir, checkpoints = damaged_copy, damaged_copy / "checkpoints"
    weights = checkpoints / "ckpt-000000006" / "model.keras"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])  # truncated after it was written
    # the same command resumes from step 4, trains steps 5 and 6 again and ends the run
    (code, _, err), = finish_processes([start_process(_command(shards, model_dir))])
    assert code == 0, err[-3000:]
    assert (f"warning: checkpoint {checkpoints / 'ckpt-000000006'} is damaged: model.keras has "
            f"{size // 2} bytes, the manifest says {size}; trying the one before") in err
    assert "resuming from" in err and "ckpt-000000004 (epoch 1, step 4 of the epoch" in err
    assert _intact(model_dir) == {"ckpt-000000002": [], "ckpt-000000004": [],
                                  "ckpt-000000006": []}  # the damaged one replaced
    assert json.loads((model_dir / "metrics.json").read_text())["summary"]["steps"] == 6


def test_no_intact_checkpoint_is_a_clear_error_and_nothing_is_deleted(shards, damaged_copy):
    model_dir, checkpoints = damaged_copy, damaged_copy / "checkpoints"
    (checkpoints / "ckpt-000000006" / "manifest.json").unlink()
    optimizer = checkpoints / "ckpt-000000004" / "optimizer.npz"
    data = bytearray(optimizer.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte altered, same size
    optimizer.write_bytes(bytes(data))
    (checkpoints / "ckpt-000000002" / "state.json").unlink()
    before = {str(p): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    (code, _, err), = finish_processes([start_process(_command(shards, model_dir, epochs=2))])
    assert code == 1 and "Traceback" not in err, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: no intact checkpoint in {checkpoints}: "), line
    assert "ckpt-000000006 is damaged: it has no manifest.json" in line
    assert ("ckpt-000000004 is damaged: optimizer.npz has the right size but not the "
            "manifest's SHA-256") in line
    assert "ckpt-000000002 is damaged: state.json is missing" in line
    assert "Nothing was deleted" in line
    after = {str(p): p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    assert after == before


def test_disk_full_before_and_while_writing_a_checkpoint(shards, tmp_path):
    """A real tmpfs of 45 MB (mounted in a private mount namespace): one checkpoint of
    the tiny model (about 29 MB) fits, a second does not; with a checkpoint only at the
    epoch's end, the final model.keras (about 10 MB) fits beside it."""
    results = {}
    for case in ("space_check", "write_fails", "final_model"):
        mount, copy = tmp_path / case / "mnt", tmp_path / case / "after"
        mount.mkdir(parents=True)
        copy.mkdir()
        prefix = small_filesystem_prefix(mount, copy, 45 << 10)
        if prefix is None:
            pytest.skip("this machine allows no tmpfs mount (not root, no user namespaces)")
        command = _command(shards, mount / "model", every=0 if case == "final_model" else 2)
        if case == "write_fails":
            command = _faulty(shards, "fill", 2, command)
        elif case == "final_model":
            command = _faulty(shards, "fill", "model.keras", command)
        results[case] = start_process(command, prefix=prefix), copy / "model"
    for case, (proc, model_dir) in results.items():
        (code, _, err), = finish_processes([proc])
        assert code == 1 and "Traceback" not in err, (case, err[-3000:])  # no crash
        line = err.strip().splitlines()[-1]
        mounted = tmp_path / case / "mnt" / "model" / "checkpoints"
        if case == "space_check":  # step 2 fits; step 4 does not, and nothing is written
            assert line.startswith(f"error: not enough space in {mounted} for checkpoint "
                                   "ckpt-000000004: it needs "), line
            assert line.endswith(f"nothing was written and the previous checkpoint, "
                                 f"{mounted / 'ckpt-000000002'}, is intact"), line
            assert _intact(model_dir) == {"ckpt-000000002": []}
        elif case == "final_model":  # the disk fills after the check of model.keras
            final = tmp_path / case / "mnt" / "model" / "model.keras"
            assert line == (f"error: could not write {final}: No space left on device; the "
                            "checkpoints are intact"), line
            assert _intact(model_dir) == {"ckpt-000000006": []}
            assert not (model_dir / "model.keras").exists()
        else:  # the disk fills after the check of step 2: the write fails (ENOSPC)
            assert line.startswith(f"error: could not write checkpoint "
                                   f"{mounted / 'ckpt-000000002'}: No space left on device "
                                   f"(while writing {mounted}/.ckpt-000000002.tmp-"), line
            assert line.endswith("the temporary files were removed and no checkpoint had "
                                 "been saved before"), line
            assert _intact(model_dir) == {}
        assert _leftovers(model_dir) == []
    # the checkpoint kept is whole: it loads
    _, model = load_trained(str(results["space_check"][1]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def _stop_line(err, signal_name, step, epoch_step, saved):
    """The last line of a stopped run: what it says, and the seconds it took."""
    line = err.strip().splitlines()[-1]
    head, _, rest = line.partition(" s after it came, ")
    assert head.startswith(f"stopped by {signal_name} "), line
    assert rest == (f"at step {step} (epoch 1, step {epoch_step} of the epoch); saved {saved}: "
                    "run the same command to resume"), line
    return float(head.split()[-1])


def test_sigterm_and_sigint_save_and_the_resumed_run_ends_like_an_uninterrupted_one(
        shards, tmp_path):
    reference, model_dir = tmp_path / "reference", tmp_path / "stopped"
    command = _command(shards, model_dir, epochs=2, every=4)
    hung_dir, final_dir = tmp_path / "hung", tmp_path / "final"
    others = [start_process(_command(shards, reference, epochs=2, every=4)),
              start_process(_faulty(shards, "sigterm-hang", 3, _command(
                  shards, hung_dir, every=2, extra=["train.stop_timeout_seconds=3"])))]
    final_command = _command(shards, final_dir, every=0, extra=["train.stop_timeout_seconds=1"])
    final = start_process(_faulty(shards, "sigterm-final", 30, final_command))

    # SIGTERM as step 3 runs: a checkpoint of step 3, exit 143, within the bound
    (code, _, err), = finish_processes([start_process(_faulty(shards, "sigterm", 3, command))])
    assert code == 128 + signal.SIGTERM, err[-3000:]
    checkpoints = model_dir / "checkpoints"
    seconds = _stop_line(err, "SIGTERM", 3, 3, checkpoints / "ckpt-000000003")
    assert seconds < 25  # train.stop_timeout_seconds
    assert "error:" not in err and "Traceback" not in err
    assert _intact(model_dir) == {"ckpt-000000003": []}
    assert _leftovers(model_dir) == []

    # the same command, SIGINT during the first validation: the epoch's steps are saved
    (code, _, err), = finish_processes([start_process(
        _faulty(shards, "sigint-validation", 0, command))])
    assert code == 128 + signal.SIGINT, err[-3000:]
    assert "resuming from" in err and "ckpt-000000003 (epoch 1, step 3 of the epoch" in err
    _stop_line(err, "SIGINT", 6, 6, checkpoints / "ckpt-000000006")
    state = json.loads((checkpoints / "ckpt-000000006" / "state.json").read_text())
    assert (state["epoch"], state["step_in_epoch"], state["history"]) == (0, 6, [])

    # SIGTERM once the training is saved, and model.keras outlasts the bound: the
    # message says the checkpoint holds the training, the same command writes the file
    (final_code, _, final_err), = finish_processes([final])
    assert final_code == 128 + signal.SIGTERM, final_err[-3000:]
    saved_in = final_dir / "checkpoints" / "ckpt-000000006"
    assert final_err.strip().splitlines()[-2:] == [
        f"SIGTERM received: the training is over and saved in {saved_in}; finishing the "
        "final model file (at most 1 s)",
        "error: the final model file was not written within 1 s of SIGTERM "
        f"(train.stop_timeout_seconds): stopped without it; the training is saved in "
        f"{saved_in}: run the same command to write it"]
    assert _intact(final_dir) == {"ckpt-000000006": []}
    assert not (final_dir / "model.keras").exists()
    assert [p.name for p in final_dir.glob(".model.keras.tmp-*.keras")]  # left by the stop

    # the same command again ends the run, equal to the run never stopped
    (code, _, err), (ref_code, _, ref_err), (hung_code, _, hung_err), \
        (final_code, _, final_err) = finish_processes(
            [start_process(command), *others, start_process(final_command)])
    assert code == 0 and ref_code == 0, (err[-3000:], ref_err[-3000:])
    assert "ckpt-000000006 (epoch 1, step 6 of the epoch, 6 steps done)" in err
    resumed = json.loads((model_dir / "metrics.json").read_text())
    uninterrupted = json.loads((reference / "metrics.json").read_text())
    assert resumed["summary"]["steps"] == uninterrupted["summary"]["steps"] == 12
    for a, b in zip(resumed["epochs"], uninterrupted["epochs"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["validation"]["gap"] == pytest.approx(b["validation"]["gap"], abs=1e-4)
    _, ours = load_trained(str(model_dir))
    _, theirs = load_trained(str(reference))
    for weight, a, b in zip(ours.weights, ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=weight.path)

    # a checkpoint that does not end within train.stop_timeout_seconds: the process
    # ends anyway, with the same status; the previous checkpoint is the latest
    assert hung_code == 128 + signal.SIGTERM, hung_err[-3000:]
    assert hung_err.strip().splitlines()[-1] == (
        "error: no checkpoint within 3 s of SIGTERM (train.stop_timeout_seconds): stopped "
        "without it; the previous checkpoint is intact")
    assert _intact(hung_dir) == {"ckpt-000000002": []}
    assert final_code == 0, final_err[-3000:]  # resumed at its end: model.keras written
    assert _leftovers(final_dir) == []  # the stopped write's temporary file removed
    _, written = load_trained(str(final_dir))
    _, saved = load_trained(str(final_dir), checkpoint=str(saved_in))
    for a, b in zip(written.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_stop_resume_and_load_on_ram_filesystem(shards, capsys):
    """TensorFlow's in-memory file system stands in for a store without POSIX
    renames (there a directory rename leaves its files behind)."""
    def config(epochs):
        return tiny_config(**{"data.train_data_pattern": str(shards / "train*.tfrecord"),
                              "data.eval_data_pattern": str(shards / "validate*.tfrecord"),
                              "data.num_classes": 4, "train.epochs": epochs,
                              "train.learning_rate": 0.01, "train.checkpoint_every_steps": 4})

    model_dir = "ram://faults/run"
    train(config(1), model_dir)
    capsys.readouterr()
    assert sorted(tf.io.gfile.listdir(f"{model_dir}/checkpoints")) == [
        "ckpt-000000004", "ckpt-000000006"]
    assert _intact(model_dir) == {"ckpt-000000004": [], "ckpt-000000006": []}
    assert not tf.io.gfile.exists(f"{model_dir}/train.lock")
    summary = train(config(2), model_dir)  # resumes, as after a stop
    err = capsys.readouterr().err
    assert f"resuming from {model_dir}/checkpoints/ckpt-000000006 (epoch 2" in err
    assert summary["steps"] == 12
    assert _intact(model_dir) == {"ckpt-000000006": [], "ckpt-000000008": [],
                                  "ckpt-000000012": []}
    # model.keras and the last checkpoint, read from ram://, hold the same weights
    _, loaded = load_trained(model_dir)
    _, last = load_trained(model_dir, checkpoint=f"{model_dir}/checkpoints/ckpt-000000012")
    for a, b in zip(loaded.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    metrics = json.loads(filesystem.read_bytes(f"{model_dir}/metrics.json"))
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert tf.io.gfile.glob(f"{model_dir}/logs/train/events*")  # TensorBoard there too
    # a damaged newest checkpoint there: reported, the one before is used
    newest = f"{model_dir}/checkpoints/ckpt-000000012/optimizer.npz"
    filesystem.write_in_place(newest, filesystem.read_bytes(newest)[:100])
    tf.io.gfile.remove(f"{model_dir}/model.keras")
    _, from_checkpoint = load_trained(model_dir)
    assert "ckpt-000000012 is damaged: optimizer.npz has 100 bytes" in capsys.readouterr().err
    tf.io.gfile.rmtree(model_dir)


def test_a_title_model_trains_on_ram_filesystem_with_its_vocabulary_there(tmp_path):
    """The title vocabulary, built from the training titles, is written to and read
    from the model directory on ram:// like the rest of it."""
    from tests.test_multimodal import _config, _records

    path = write_file(tmp_path / "data.tfrecord", _records(24))
    cfg = _config(tmp_path, **{
        "model.text.vocab_file": "''", "model.text.vocab_min_count": 2,
        "data.train_data_pattern": path, "data.eval_data_pattern": path,
        "train.epochs": 1, "train.eval_before_training": "false"})
    model_dir = "ram://faults/title"
    train(cfg, model_dir, verbose=False)
    vocab = filesystem.read_bytes(f"{model_dir}/vocab.txt").decode("utf-8")
    assert vocab.split("\n")[:5] == ["dog", "cat", "a", "狗", "猫"]  # by count, then order
    saved, model = load_trained(model_dir)
    assert saved.model.text.vocab_file == f"{model_dir}/vocab.txt"
    assert model.get_layer("title_tokens").vocabulary == vocab.split("\n")[:-1]
    tf.io.gfile.rmtree(model_dir)
