"""The paper-size NeXtVLAD's training step against the machine's limit: the trainer's
step in float32 and mixed_bfloat16 and a plain Keras implementation of the same
network, with their FLOPs counted from the traced step graphs, against the matmul
peak of the same process and dtype, in one run and one table.

    python benchmarks/nextvlad_throughput.py [--batch_size 32 --frames 300 --rounds 5]

Rows:
- `matmul float32`, `matmul bfloat16`: a large square matmul (`--peak_size`), the
  peak each dtype reaches in this process (the best of its repetitions in a round);
- `trainer float32`, `trainer mixed_bfloat16`: the trainer's own step
  (`videotag.training.step.TrainStep`: losses, L2 penalty, gradient clipping by
  variable, Adam), uint8 frames dequantized inside, frame mask and masked batch norm;
- `plain Keras float32`: `plain_nextvlad.py` through Keras's `train_on_batch` (stock
  layers, float32 frames prepared ahead, no masking, no clipping, no penalty);
- `trainer float32 XLA` with `--xla`: the trainer's step with `train.jit_compile`.

Every video has 300 frames (the YT8M worst case); the data are synthetic and in
memory, so the figures are those of the step, not of reading records. FLOPs per
example are counted by TensorFlow's profiler (`tf.compat.v1.profiler`,
`float_operation`) over the concrete graph of one step, forward, backward and
update: the matmuls and every element-wise op with a registered count (a sigmoid or
an exp counts 0), the profiler's count of batched matmuls with an adjoint operand
mended (`counted_flops`). Rounds take the variants in turn so machine noise hits all of
them; each figure is the median of the rounds. `--json` writes the figures.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from plain_nextvlad import build_plain  # noqa: E402

import videotag  # noqa: E402
from videotag.data import schema  # noqa: E402
from videotag.training.distribution import distributed_batches, make_strategy  # noqa: E402
from videotag.training.step import TrainStep  # noqa: E402
from videotag.training.trainer import build_for_training  # noqa: E402


BATCH_MATMULS = ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def counted_flops(concrete_function) -> int:
    """Floating-point operations of one call of a concrete function's graph, counted
    by TensorFlow's profiler from the ops and their static shapes.

    One count is mended: the profiler's batched matmul (its `flops_registry`) reads
    the inner dimension after an attribute `transpose_a`, which BatchMatMul ops do
    not have (theirs is `adj_x`), so a product whose first operand is adjoint is
    counted with its other dimension (the VLAD product's gradient was counted 18.75
    times its FLOPs, the product written with `transpose_a` a 19th of them). Such
    products are recounted here from their shapes: 2 x output entries x the inner
    dimension."""
    graph = concrete_function.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    total = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    for op in graph.get_operations():
        if op.type in BATCH_MATMULS and op.get_attr("adj_x"):
            a, out = op.inputs[0].shape, op.outputs[0].shape
            if a.is_fully_defined() and out.is_fully_defined():
                total += 2 * out.num_elements() * (a[-2] - a[-1])  # the profiler took a[-1]
    return total


class Matmul:
    """A square matmul of `size` in `dtype`: `run()` returns its FLOP/s."""

    def __init__(self, size, dtype, repeats=3):
        self.size, self.repeats = size, repeats
        self.a = tf.cast(tf.random.normal([size, size]), dtype)
        self.fn = tf.function(lambda a: tf.matmul(a, a))
        self.fn(self.a).numpy()
        self.flops_per_example = None

    def run(self):
        best = float("inf")
        for _ in range(self.repeats):
            start = time.perf_counter()
            self.fn(self.a).numpy()
            best = min(best, time.perf_counter() - start)
        return 2 * self.size ** 3 / best


class Trainer:
    """The trainer's step on one batch held in memory: `run()` returns examples/s."""

    def __init__(self, args, overrides):
        b = args.batch_size
        cfg = videotag.config.load("nextvlad", [
            f"train.batch_size={b}", "model.input.normalization=none", *overrides])
        keras.utils.set_random_seed(0)
        strategy = make_strategy(cfg.train)
        model, optimizer = build_for_training(cfg, strategy)
        data = tf.data.Dataset.from_tensors(synthetic_batch(args, uint8=True)).repeat()
        self.batches = iter(distributed_batches(strategy, b, lambda n, i, size: data))
        self.step = TrainStep(cfg, model, optimizer, strategy)
        self.steps, self.batch_size = args.steps, b
        batch = next(self.batches)
        self.flops_per_example = None
        if not cfg.train.jit_compile:  # XLA's inner function is not in the outer graph
            self.flops_per_example = counted_flops(
                self.step._function.get_concrete_function(batch)) / b
        float(self.step(batch)["loss"])  # trace and warm up

    def run(self):
        start = time.perf_counter()
        for _ in range(self.steps):
            values = self.step(next(self.batches))
        float(values["loss"])
        return self.steps * self.batch_size / (time.perf_counter() - start)


class PlainKeras:
    """`plain_nextvlad.py` through `train_on_batch`: `run()` returns examples/s."""

    def __init__(self, args):
        keras.utils.set_random_seed(0)
        self.model = build_plain(3862)
        self.model.compile(optimizer=keras.optimizers.Adam(2e-4), loss="binary_crossentropy")
        inputs, targets = synthetic_batch(args, uint8=False)
        self.x, self.y = {k: tf.constant(v) for k, v in inputs.items()}, tf.constant(targets)
        self.steps, self.batch_size = args.steps, args.batch_size
        self.flops_per_example = counted_flops(tf.function(self.model.train_step)
                                               .get_concrete_function((self.x, self.y))) / \
            args.batch_size
        self.model.train_on_batch(self.x, self.y)

    def run(self):
        self.model.train_on_batch(self.x, self.y)  # the previous call has finished
        start = time.perf_counter()
        for _ in range(self.steps):
            self.model.train_on_batch(self.x, self.y)
        return self.steps * self.batch_size / (time.perf_counter() - start)


def synthetic_batch(args, uint8):
    """(inputs, targets) of full-length videos, the same for every model."""
    rng = np.random.default_rng(0)
    b, t = args.batch_size, args.frames
    rgb = rng.integers(0, 256, (b, t, 1024), dtype=np.uint8)
    audio = rng.integers(0, 256, (b, t, 128), dtype=np.uint8)
    labels = (rng.random((b, 3862)) < 0.001).astype("float32")
    if uint8:
        return ({"rgb": rgb, "audio": audio, "num_frames": np.full([b], t, np.int32)},
                {"tags": labels})
    return {"rgb": schema.dequantize(rgb), "audio": schema.dequantize(audio)}, labels


def table(rates, flops, peak_of, lines=print):
    """Prints the table; returns the rows as dicts."""
    rows = []
    head = (f"{'variant':<26}{'examples/s':>11}{'GFLOP/example':>14}{'GFLOP/s':>9}"
            f"{'% of peak':>10}{'vs plain':>9}{'vs f32':>8}")
    lines(head)
    plain = rates.get("plain Keras float32")
    f32 = rates.get("trainer float32")
    for name, rate in rates.items():
        row = {"variant": name}
        if name.startswith("matmul"):
            row["gflop_per_s"] = rate / 1e9
            lines(f"{name:<26}{'':>11}{'':>14}{rate / 1e9:>9.1f}{100:>9.0f}%")
        else:
            per = flops.get(name)
            gflops = rate * per / 1e9 if per else None
            peak = rates[peak_of(name)]
            row.update(examples_per_s=rate, gflop_per_example=per and per / 1e9,
                       gflop_per_s=gflops, percent_of_peak=gflops and 100 * gflops * 1e9 / peak,
                       vs_plain=plain and rate / plain, vs_trainer_float32=f32 and rate / f32)
            cells = [f"{name:<26}{rate:>11.1f}",
                     f"{per / 1e9:>14.2f}{gflops:>9.1f}{row['percent_of_peak']:>9.0f}%"
                     if per else f"{'-':>14}{'-':>9}{'-':>10}",
                     f"{row['vs_plain']:>9.2f}" if plain else f"{'':>9}",
                     f"{row['vs_trainer_float32']:>8.2f}" if f32 else ""]
            lines("".join(cells))
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peak_size", type=int, default=2048,
                        help="side of the square matmul of the peak rows")
    parser.add_argument("--xla", action="store_true", help="add the trainer with jit_compile")
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args()

    variants = {
        "matmul float32": lambda: Matmul(args.peak_size, tf.float32),
        "matmul bfloat16": lambda: Matmul(args.peak_size, tf.bfloat16),
        "trainer float32": lambda: Trainer(args, []),
        "trainer mixed_bfloat16": lambda: Trainer(
            args, ["train.mixed_precision=mixed_bfloat16"]),
        "plain Keras float32": lambda: PlainKeras(args),
    }
    if args.xla:
        variants["trainer float32 XLA"] = lambda: Trainer(args, ["train.jit_compile=true"])
    built = {}
    for name, make in variants.items():
        print(f"building {name}", file=sys.stderr, flush=True)
        built[name] = make()
    samples = {name: [] for name in built}
    for r in range(args.rounds):
        for name, variant in built.items():
            samples[name].append(variant.run())
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {s[-1] / 1e9:.0f} GFLOP/s" if n.startswith("matmul") else f"{n} {s[-1]:.1f}/s"
            for n, s in samples.items()), file=sys.stderr, flush=True)
    rates = {name: statistics.median(s) for name, s in samples.items()}
    flops = {name: v.flops_per_example for name, v in built.items() if v.flops_per_example}

    def peak_of(name):
        return "matmul bfloat16" if "bfloat16" in name else "matmul float32"

    load = os.getloadavg()
    print(f"paper-size NEXTVLAD (3862 classes), batch {args.batch_size} x {args.frames} "
          f"frames, median of {args.rounds} rounds of {args.steps} steps; matmul "
          f"{args.peak_size}^2; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    rows = table(rates, flops, peak_of)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch_size": args.batch_size, "frames": args.frames,
                       "load_average": load, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
