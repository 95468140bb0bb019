"""Where the paper-size NeXtVLAD's training step spends its time: milliseconds per
step by op group, for the trainer's float32 step and the plain Keras one of
`nextvlad_throughput.py`, from a TensorFlow profiler trace of a few steps.

    python benchmarks/nextvlad_profile.py [--batch_size 32 --frames 300 --steps 2]

Both variants are built and warmed up, then take turns for `--rounds` rounds, each
traced over `--steps` steps with `tf.profiler.experimental`; the trace's op events
(TensorFlow writes them as an XSpace protocol buffer, `*.xplane.pb`, whose message
TensorFlow ships) are summed by op group, and every figure is the median of the
rounds (the sums are of the medians). With `--inter_op_threads 1` (the default
here) TensorFlow runs one op at a time, each on all intra-op threads, so an op's
duration is its own and the groups add up to the step; with 0 (TensorFlow's
default, as the throughput benchmark runs) ops overlap and a group's figure also
holds the time it waited for the cores. The threading is set for the whole
process, so both variants see the same. `--top N` also prints the N longest single
ops of each variant (in its last round). On a loaded machine a preempted op's
duration holds the time it did not run: profile an idle machine.

Groups: the matmuls of each layer (forward and backward apart); the NeXtVLAD's
element-wise work (softmax over clusters, the weighting by attention and mask, the
cluster masses, the residuals to the centres, the intra-normalisation, the expand
dense's bias) and its assignment batch norm (masked in the trainer); the other
layers' element-wise work; the uint8 dequantization; the optimizer update; the
gradient norms and clipping; the L2 penalty (with the few top-level sums of the
loss); the sums of gradients reaching a tensor from several consumers (AddN); the
rest.
"""

import argparse
import collections
import glob
import os
import re
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tensorflow as tf  # noqa: E402

# (group, pattern on "op name:op type"), the first match wins
GROUPS = [
    ("optimizer update", r"(^|/)(reduced_gradients_)?adam/"),
    ("gradient norms, clipping", r"^(L2Loss|cond|clip_by|global_norm|Sqrt)[_/:]"),
    ("gradient sums (AddN)", r"(^|/)AddN(_\d+)?:"),
    ("dequantize uint8", r"dequantize_"),
    ("L2 penalty, top-level sums", r"^(gradient_tape/)?(Square|Sum|Mul|mul)(_\d+)?:"),
]
LAYER = re.compile(r"(nextvlad_(rgb|audio))(_\d+)?/(expand|group_attention|cluster_assign_bn"
                   r"|cluster_assign)?")
MATMUL = re.compile(r":_?\w*MatMul\w*$")


def group_of(name):
    """The op group of a trace event "op name:op type"."""
    for group, pattern in GROUPS:
        if re.search(pattern, name):
            return group
    backward = "bwd" if name.startswith("gradient_tape/") else "fwd"
    layer = LAYER.search(name)
    if MATMUL.search(name):
        if layer:
            part = layer.group(4) or "vlad product"
            return f"matmul {layer.group(1)} {part} {backward}"
        for known in ("hidden", "squeeze", "excite", "logits"):
            if re.search(rf"(^|/){known}(_\d+)?/", name):
                return f"matmul {known} {backward}"
        return f"matmul other {backward}"
    if layer:
        part = "assignment batch norm" if layer.group(4) == "cluster_assign_bn" else \
            "element-wise"
        return f"{layer.group(1)} {part} {backward}"
    return f"other layers, loss {backward}"


def trace_ops(run, steps):
    """Runs `run()` (which takes `steps` steps) under the profiler, its trace in a
    temporary directory; returns ({op event name: milliseconds per step} summed
    over the trace, the wall milliseconds per step)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with tempfile.TemporaryDirectory(prefix="nextvlad_profile_") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        path = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0]
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    ops = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # op events are "name:type"; executor and function frames are not ops
                if ":" in name and not name.startswith(("ExecutorState", "KernelAndDevice",
                                                        "EagerLocalExecute")):
                    ops[name] += event.duration_ps / 1e9 / steps
    return ops, 1000 * wall / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--steps", type=int, default=2, help="traced steps per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; the variants take turns and each figure is a median")
    parser.add_argument("--inter_op_threads", type=int, default=1,
                        help="TensorFlow's inter-op threads (0: its default)")
    parser.add_argument("--top", type=int, default=0, help="also print the N longest ops")
    args = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from nextvlad_throughput import PlainKeras, Trainer

    runs = argparse.Namespace(batch_size=args.batch_size, frames=args.frames,
                              steps=args.steps)
    variants = {}
    for name, make in (("trainer float32", lambda: Trainer(runs, [])),
                       ("plain Keras float32", lambda: PlainKeras(runs))):
        print(f"building {name}", file=sys.stderr, flush=True)
        variants[name] = make()
        variants[name].run()  # warm-up
    samples = {name: [] for name in variants}  # per round: (groups, ops, wall)
    for r in range(args.rounds):
        for name, variant in variants.items():
            ops, wall = trace_ops(variant.run, args.steps)
            groups = collections.Counter()
            for op, ms in ops.items():
                groups[group_of(op)] += ms
            samples[name].append((groups, ops, wall))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {s[-1][2]:.0f} ms/step" for n, s in samples.items()), file=sys.stderr,
            flush=True)
    tables, walls, tops = {}, {}, {}
    for name, rounds in samples.items():
        every = set().union(*(g for g, _, _ in rounds))
        tables[name] = {g: statistics.median(r[0][g] for r in rounds) for g in every}
        walls[name] = statistics.median(w for _, _, w in rounds)
        tops[name] = rounds[-1][1].most_common(args.top)
    names = list(tables)
    load = os.getloadavg()
    print(f"paper-size NEXTVLAD, batch {args.batch_size} x {args.frames} frames, "
          f"median of {args.rounds} rounds of {args.steps} traced steps, inter-op threads "
          f"{args.inter_op_threads or 'default'}; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; ms per step")
    print(f"{'op group':<46}" + "".join(f"{n:>22}" for n in names))
    every = sorted(set().union(*tables.values()),
                   key=lambda g: -max(t.get(g, 0.0) for t in tables.values()))
    for group in every:
        print(f"{group:<46}" + "".join(f"{tables[n].get(group, 0.0):>22.1f}" for n in names))
    for label, values in (("sum of ops", [sum(tables[n].values()) for n in names]),
                          ("  of which matmuls", [sum(v for g, v in tables[n].items()
                                                      if g.startswith("matmul"))
                                                  for n in names]),
                          ("  other ops", [sum(v for g, v in tables[n].items()
                                               if not g.startswith("matmul")) for n in names]),
                          ("wall time of a step (under the profiler)",
                           [walls[n] for n in names])):
        print(f"{label:<46}" + "".join(f"{v:>22.1f}" for v in values))
    for name in names:
        if tops[name]:
            print(f"\nlongest ops of {name} (ms per step)")
            for op, ms in tops[name]:
                print(f"{ms:9.1f}  {op}")


if __name__ == "__main__":
    main()
