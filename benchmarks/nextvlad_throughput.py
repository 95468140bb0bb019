"""Training examples/s of the paper-size NeXtVLAD (3862 classes): videotag's NEXTVLAD
against a plain Keras implementation of the same network, in the same run.

    python benchmarks/nextvlad_throughput.py [--batch_size 32 --frames 300 --rounds 5]

Both train on the same synthetic full-length videos (every video 300 frames, the YT8M
worst case) with Adam and binary cross-entropy. videotag's model reads uint8 frames
and dequantizes inside (as it does in real use); the plain one takes float32 frames
prepared ahead, which favours the baseline. Rounds alternate between the two models so
that machine noise hits both; the figure is the median of the rounds.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from plain_nextvlad import build_plain  # noqa: E402

import videotag  # noqa: E402
from videotag.data import schema  # noqa: E402


def _timed_steps(model, x, y, steps, batch_size):
    model.train_on_batch(x, y)  # sync before timing
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    cfg = videotag.config.load("nextvlad")  # the paper config, 3862 classes
    keras.utils.set_random_seed(0)
    ours = videotag.build_model(cfg)
    ours.compile(optimizer=keras.optimizers.Adam(2e-4),
                 loss={"tags": keras.losses.BinaryCrossentropy()})
    plain = build_plain(cfg.data.num_classes)
    plain.compile(optimizer=keras.optimizers.Adam(2e-4), loss="binary_crossentropy")

    rng = np.random.default_rng(0)
    b, t = args.batch_size, args.frames
    rgb = rng.integers(0, 256, (b, t, 1024), dtype=np.uint8)
    audio = rng.integers(0, 256, (b, t, 128), dtype=np.uint8)
    labels = (rng.random((b, cfg.data.num_classes)) < 0.001).astype("float32")
    x_ours = {"rgb": tf.constant(rgb), "audio": tf.constant(audio),
              "num_frames": tf.fill([b], t)}
    x_plain = {"rgb": tf.constant(schema.dequantize(rgb)), "audio": tf.constant(schema.dequantize(audio))}
    y_ours, y_plain = {"tags": tf.constant(labels)}, tf.constant(labels)

    print(f"paper-size NeXtVLAD, {cfg.data.num_classes} classes, {ours.count_params():,} "
          f"parameters (plain: {plain.count_params():,}); batch {b} x {t} frames",
          file=sys.stderr)
    for model, x, y in ((ours, x_ours, y_ours), (plain, x_plain, y_plain)):
        model.train_on_batch(x, y)  # trace and warm up
    rates = {"videotag": [], "plain_keras": []}
    for r in range(args.rounds):
        rates["videotag"].append(_timed_steps(ours, x_ours, y_ours, args.steps, b))
        rates["plain_keras"].append(_timed_steps(plain, x_plain, y_plain, args.steps, b))
        print(f"round {r + 1}: videotag {rates['videotag'][-1]:.1f} ex/s, "
              f"plain Keras {rates['plain_keras'][-1]:.1f} ex/s", file=sys.stderr)
    ours_rate = statistics.median(rates["videotag"])
    plain_rate = statistics.median(rates["plain_keras"])
    result = {
        "batch_size": b, "frames": t, "classes": cfg.data.num_classes,
        "videotag_examples_per_s": round(ours_rate, 2),
        "plain_keras_examples_per_s": round(plain_rate, 2),
        "ratio": round(ours_rate / plain_rate, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
