"""Training examples/s of the paper-size NeXtVLAD through videotag's own training step,
in float32, mixed_bfloat16, XLA and with FGM on one device, and with 1 or 2 replicas on
the CPU split into 2 logical devices, all in one run; ratios against float32.

    python benchmarks/train_throughput.py [--batch_size 32 --frames 300 --rounds 3]

The step is the trainer's (`videotag.training.step.TrainStep`: losses, gradients
summed over replicas, Adam), fed synthetic full-length videos (uint8, 300 frames, 3862
classes) from memory, so the figures are those of the model and the step, not of
reading records. Devices must be set before TensorFlow starts, so each device setting
runs in its own process (started by this script); within a process the variants take
turns round by round and the figure is the median of the rounds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# name -> (logical CPU devices of the process, config overrides); "1 device" and
# "2 devices" share a process (the host CPU split in two) and take turns
VARIANTS = {
    "float32": (1, []),
    "mixed_bfloat16": (1, ["train.mixed_precision=mixed_bfloat16"]),
    "xla": (1, ["train.jit_compile=true"]),
    "fgm": (1, ["train.fgm_alpha=0.5"]),
    "1 device": (2, []),
    "2 devices": (2, ["train.distribution=mirrored"]),
}


def measure(names, args):
    """Runs in a fresh process: examples/s of each variant, median of the rounds."""
    devices = VARIANTS[names[0]][0]
    from videotag.training.distribution import split_host_cpu

    if devices > 1:
        split_host_cpu(devices)
    import keras
    import numpy as np
    import tensorflow as tf

    import videotag
    from videotag.training.distribution import distributed_batches, make_strategy
    from videotag.training.step import TrainStep
    from videotag.training.trainer import build_for_training

    rng = np.random.default_rng(0)
    b, t = args.batch_size, args.frames
    steps = {}
    for name in names:
        # synthetic frames: no eigenvalue rescaling (it needs YT8M's PCA file)
        cfg = videotag.config.load("nextvlad", [f"train.batch_size={b}",
                                               "model.input.normalization=none",
                                               *VARIANTS[name][1]])
        keras.utils.set_random_seed(0)
        strategy = make_strategy(cfg.train)
        model, optimizer = build_for_training(cfg, strategy)
        inputs = {"rgb": rng.integers(0, 256, (b, t, 1024), dtype=np.uint8),
                  "audio": rng.integers(0, 256, (b, t, 128), dtype=np.uint8),
                  "num_frames": np.full([b], t, np.int32)}
        labels = (rng.random((b, cfg.data.num_classes)) < 0.001).astype("float32")
        data = tf.data.Dataset.from_tensors((inputs, {"tags": labels})).repeat()
        batches = iter(distributed_batches(strategy, b, lambda n, i, size: data))
        step = TrainStep(cfg, model, optimizer, strategy)
        float(step(next(batches))["loss"])  # trace (and compile) before timing
        steps[name] = (step, batches)
    rates = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, (step, batches) in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                values = step(next(batches))
            float(values["loss"])
            rates[name].append(args.steps * b / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--measure", default="", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure.split(","), args)))
        return

    wanted = [v for v in args.variants.split(",") if v]
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    if "float32" not in wanted:
        wanted.insert(0, "float32")  # the baseline of the ratios
    groups = {}
    for name in wanted:
        groups.setdefault(VARIANTS[name][0], []).append(name)
    results = {}
    for devices, names in sorted(groups.items()):
        command = [sys.executable, os.path.abspath(__file__), "--measure", ",".join(names),
                   "--batch_size", str(args.batch_size), "--frames", str(args.frames),
                   "--steps", str(args.steps), "--rounds", str(args.rounds)]
        out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO,
                             env=dict(os.environ, PYTHONPATH=REPO)).stdout
        results.update(json.loads(out.strip().splitlines()[-1]))
    base = results["float32"]
    print(f"paper-size NEXTVLAD (3862 classes), batch {args.batch_size}, {args.frames} frames, "
          f"median of {args.rounds} rounds of {args.steps} steps")
    print(f"{'variant':<16}{'examples/s':>12}{'vs float32':>12}")
    for name in wanted:
        print(f"{name:<16}{results[name]:>12.1f}{results[name] / base:>12.2f}")
    if "1 device" in results and "2 devices" in results:
        print(f"2 devices / 1 device: {results['2 devices'] / results['1 device']:.2f}")


if __name__ == "__main__":
    main()
