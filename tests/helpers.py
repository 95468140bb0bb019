"""Shared test helpers: tiny configs and records built field by field."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import videotag

NUM_CLASSES = 10


def tiny_config(model="NEXTVLAD", **overrides):
    """A tiny config of `model` (small clusters and hidden size) for fast tests."""
    base = {
        "data.num_classes": NUM_CLASSES,
        "data.max_frames": 20,
        "model.hidden_size": 32,
        "model.cluster_size": 8,
        "model.groups": 4,
        "model.dropout": 0.0,
        # the paper config rescales rgb by YT8M's PCA eigenvalues, which need a file
        "model.input.normalization": "none",
        # the generic tests' training settings (the paper's are those of the authors'
        # script, tested in tests/test_reference_nextvlad.py)
        "model.head.tags_loss": "mean",
        "model.head.l2_penalty": 1e-8,
        "model.head.l2_bias": False,
        "model.batch_norm_momentum": 0.99,
        "train.clip_gradient_norm": 0.0,
        "train.clip_gradient_per_variable": False,
        "train.batch_size": 8,
        "train.epochs": 1,
        "eval.batch_size": 16,
    }
    base.update(overrides)
    return videotag.config.load(model.lower(), [f"{k}={v}" for k, v in base.items()])


def bytes_feature(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def int64_feature(*values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def frame_record(video_id=b"v0", labels=(1,), rgb=None, audio=None, id_key="id",
                 rgb_size=1024, audio_size=128, frames=3, seed=0, title=None,
                 category=None) -> bytes:
    """A serialized SequenceExample written field by field with tf.train protos.

    `rgb`/`audio` are uint8 arrays [frames, size]; random when None. `title` (bytes or
    str) and `category` (an int, or a tuple of ints) are written when given.
    """
    rng = np.random.default_rng(seed)
    if rgb is None:
        rgb = rng.integers(0, 256, (frames, rgb_size), dtype=np.uint8)
    if audio is None:
        audio = rng.integers(0, 256, (frames, audio_size), dtype=np.uint8)
    context = {"labels": int64_feature(*labels)}
    if video_id is not None:
        context[id_key] = bytes_feature(video_id)
    if title is not None:
        context["title"] = bytes_feature(title.encode("utf-8") if isinstance(title, str) else title)
    if category is not None:
        context["category"] = int64_feature(*(category if isinstance(category, tuple) else (category,)))
    lists = {
        "rgb": tf.train.FeatureList(feature=[bytes_feature(bytes(f)) for f in rgb]),
        "audio": tf.train.FeatureList(feature=[bytes_feature(bytes(f)) for f in audio]),
    }
    example = tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists),
    )
    return example.SerializeToString()


def write_file(path, records) -> str:
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)
    return str(path)


def random_batch(cfg, batch=4, frames=6, seed=0, num_frames=None):
    """A dict of model inputs with random uint8 frames."""
    rng = np.random.default_rng(seed)
    out = {
        n: rng.integers(0, 256, (batch, frames, s), dtype=np.uint8)
        for n, s in zip(cfg.data.feature_names, cfg.data.feature_sizes)
    }
    out["num_frames"] = np.asarray(
        num_frames if num_frames is not None else rng.integers(1, frames + 1, batch), np.int32
    )
    return out


# --- processes -----------------------------------------------------------------

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def start_process(args, env=None, cwd=REPO, prefix=()):
    """Starts `python *args` with this checkout on the path; output to pipes.
    `prefix`: a command that runs python (e.g. one that mounts a file system first)."""
    import os
    import subprocess
    import sys

    full_env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    full_env.update(env or {})
    return subprocess.Popen([*map(str, prefix), sys.executable, *map(str, args)], cwd=cwd,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


# Runs its arguments with a tmpfs of a given size mounted at a given folder, in a
# private mount namespace (nothing is left mounted, whatever happens), then copies
# what is on the tmpfs to another folder, for the test to look at, and exits with
# the command's status (97: the mount failed).
_ON_TMPFS = ('mnt="$1"; out="$2"; size="$3"; shift 3; '
             'mount -t tmpfs -o "size=$size" tmpfs "$mnt" || exit 97; '
             '"$@"; rc=$?; cp -a "$mnt/." "$out/"; exit $rc')


def small_filesystem_prefix(mount_point, copy_to, size_kb):
    """A `start_process` prefix running python on a real, small file system: a tmpfs
    of `size_kb` KB at `mount_point` (copied to `copy_to` at the end), mounted in a
    private mount namespace (`unshare --mount`, as root, or with a user namespace
    otherwise). None when this machine allows neither."""
    import os
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return None
    for flags in (["--mount"], ["--user", "--map-root-user", "--mount"]):
        if flags == ["--mount"] and os.geteuid() != 0:
            continue
        probe = subprocess.run(["unshare", *flags, "sh", "-c", _ON_TMPFS, "sh", mount_point,
                                copy_to, "64k", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", *flags, "sh", "-c", _ON_TMPFS, "sh", mount_point, copy_to,
                    f"{size_kb}k"]
    return None


def finish_processes(procs, timeout=300):
    """Waits for every process (killing all of them past `timeout` seconds in total)
    and returns their (returncode, stdout, stderr)."""
    import subprocess
    import time

    deadline = time.monotonic() + timeout
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.communicate()
        raise AssertionError(f"processes still running after {timeout} s")
    return results


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 right now."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def scalar_events(log_dir):
    """{tag: [(step, value), ...]} of the TensorBoard scalars in `log_dir`."""
    import pathlib

    out = {}
    for path in sorted(pathlib.Path(log_dir).glob("events*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                out.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return out


def learnable_records(n, num_classes=4, frames=6, seed=0):
    """Records whose label is readable from the frames: noisy class prototypes."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(123).integers(40, 216, (num_classes, 1024 + 128))
    out = []
    for i in range(n):
        c = i % num_classes
        x = np.clip(protos[c] + rng.normal(0, 30, (frames, 1024 + 128)), 0, 255).astype(np.uint8)
        out.append(frame_record(f"v{seed}-{i}".encode(), (c,), rgb=x[:, :1024], audio=x[:, 1024:]))
    return out


def write_lock(model_dir, **fields):
    """Writes a run lock (`videotag.training.lock`) of another run into `model_dir`:
    this host, pid 1, a fresh heartbeat, token "theirs", with `fields` changed."""
    import json
    import time

    from videotag.training import lock as lock_lib

    holder = dict(host=lock_lib.HOST, pid=1, started="2026-01-01 00:00:00 +0000",
                  heartbeat=time.time(), token="theirs")
    holder.update(fields)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "train.lock").write_text(json.dumps(holder))


def with_segments(record: bytes, labels=(), starts=(), scores=()) -> bytes:
    """`record` with the YT8M 2019 segment ratings added as context lists."""
    example = tf.train.SequenceExample.FromString(record)
    context = example.context.feature
    context["segment_labels"].int64_list.value.extend(labels)
    context["segment_start_times"].int64_list.value.extend(starts)
    context["segment_scores"].float_list.value.extend(scores)
    return example.SerializeToString()
