"""Seconds to write and to read back one checkpoint of the paper-size NeXtVLAD (89 M
parameters, Adam), videotag's checkpoints against the plain Keras way, in one run.

    python benchmarks/checkpoint_io.py [--rounds 3] [--dir /tmp/ckpt-bench]

- videotag write: `CheckpointStore.save` (free-space check, `.keras` writer,
  optimizer `.npz`, every file read back into the SHA-256 manifest, fsync, rename);
- plain write: `model.save_weights(.weights.h5)` and the optimizer's variables in an
  `.npz`, fsync, the baseline the checkpoints used before;
- videotag read: `CheckpointStore.restore` (the manifest checked, then loaded);
- plain read: `model.load_weights(.weights.h5)` and the optimizer's `.npz`.

The rounds alternate between the two; the figures are the medians, and the ratio
tells what the manifest and the safer writer cost.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import videotag
    from videotag.training.checkpoints import CheckpointStore, RunState, variable_bytes
    from videotag.training.trainer import build_for_training

    # the weights alone count: no eigenvalue rescaling (it needs YT8M's PCA file)
    cfg = videotag.config.load("nextvlad", ["model.input.normalization=none"])
    model, optimizer = build_for_training(cfg, tf.distribute.get_strategy())
    root = args.dir or tempfile.mkdtemp(prefix="ckpt-bench-")
    os.makedirs(root, exist_ok=True)
    store = CheckpointStore(os.path.join(root, "checkpoints"), keep=1)
    plain = os.path.join(root, "plain")
    size = variable_bytes(list(model.weights) + list(optimizer.variables))

    def plain_write():
        os.makedirs(plain, exist_ok=True)
        model.save_weights(os.path.join(plain, "model.weights.h5"))
        saved = {}
        optimizer.save_own_variables(saved)
        with open(os.path.join(plain, "optimizer.npz"), "wb") as f:
            np.savez(f, **saved)
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(os.path.join(plain, "model.weights.h5"), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    def plain_read():
        model.load_weights(os.path.join(plain, "model.weights.h5"))
        with np.load(os.path.join(plain, "optimizer.npz")) as data:
            optimizer.load_own_variables({k: data[k] for k in data.files})

    times = {k: [] for k in ("videotag write", "plain write", "videotag read", "plain read")}
    for round_ in range(args.rounds):
        state = RunState(global_step=round_ + 1)
        for name, work in (("plain write", plain_write),
                           ("videotag write", lambda: store.save(model, optimizer, state)),
                           ("plain read", plain_read),
                           ("videotag read", lambda: store.restore(store.latest(), model,
                                                                   optimizer))):
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    print(f"paper-size NEXTVLAD + Adam: {size / 1e6:.0f} MB of variables; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| | seconds (median of %d) | vs plain |\n|---|---|---|" % args.rounds)
    for kind in ("write", "read"):
        ours = statistics.median(times[f"videotag {kind}"])
        base = statistics.median(times[f"plain {kind}"])
        print(f"| plain {kind} | {base:.2f} | 1.00 |")
        print(f"| videotag {kind} | {ours:.2f} | {ours / base:.2f} |")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
