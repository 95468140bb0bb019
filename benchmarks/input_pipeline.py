"""Videos/s of the training input pipeline (every record validated) against the ceiling
of a bare batched uint8 parse of the same shards, and of `videotag validate-data`
against the training pipeline, all in the same run.

Writes synthetic YT8M-size frame-level shards of realistic length (1024 + 128 bytes
per frame; 152-300 frames, mean 226; 1-5 labels of 3862) to a temporary folder, then
alternates rounds of:

- bare parse (the ceiling): the shards read in parallel, batched, one
  `tf.io.parse_sequence_example` per batch, the frames decoded to uint8
  [B, longest video, size] (`tf.io.decode_raw`), `num_frames`, the labels multi-hot
  (`tf.sparse.to_indicator`), prefetched. No record is checked: a bad one fails the
  batch or goes through unnoticed;
- training pipeline: iterating `videotag.data.make_dataset` (training order: the
  files and records shuffled; each batch parsed, every record checked and the frames
  decoded to uint8 by the record parser in one map call). Same shards, same batch
  size, same elements as the bare parse (uint8 frames [B, longest video, size],
  `num_frames`, multi-hot `labels`, `video_id`);
- validate-data: `videotag.data.validation.validate_data` (every record parsed and
  checked, its types included; all frames counted).

Two more passes say what the first two do not compare: the training pipeline in
file order (`training=False`: no shuffle, against the bare parse, which does not
shuffle either) and the bare parse with the records shuffled as the training
pipeline shuffles them (against the training pipeline): shuffling costs the bare
parse too.

Each of those passes starts cold: the training pipeline's shuffle buffer
(`data.shuffle_buffer`, 2048 records of ~260 KB here) is filled before its first
batch, once per pass; with 3000 videos that fill is two thirds of the pass, where an
epoch of a real training set (millions of videos) pays it once. So the steady state
is measured too, as training runs: the bare parse (in file order, and shuffled as
the training pipeline shuffles) and the training pipeline repeated
(`make_dataset(..., repeat=True)`: the shuffle then carries its buffer across
passes), the clock started after one pass's worth of batches (`--steady_passes`
passes' worth timed). Issue 17's ratio is the steady one: training pipeline / bare
parse, repeated; against the bare parse in file order (the ceiling) and against the
shuffled one (what validating every record costs, the shuffle paid by both).

Each clock starts once its pipeline is built and its functions instantiated (the
iterator made; `validate_data` does the same before its own clock) and stops after
its last element. The
medians of the rounds are reported, with the ratios the issues ask for: training
pipeline / bare parse in the steady state (issue 17: >= 0.9; also against the
shuffled bare parse, and from a cold start)
and validate-data / training pipeline (issue 12: >= 1.0), by the wall clock and by
the CPU time of the process (videos per CPU-second: the steadier figure on a machine
shared with other jobs).

    .venv/bin/python benchmarks/input_pipeline.py --videos 600 --shards 4 --rounds 3
"""

import argparse
import collections
import itertools
import os
import statistics
import sys
import tempfile
import time
from typing import Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tests.helpers import frame_record, write_file  # noqa: E402
from videotag import config as config_lib  # noqa: E402
from videotag.data import make_dataset  # noqa: E402
from videotag.data.parsing import RecordParser  # noqa: E402
from videotag.data.shards import list_files  # noqa: E402
from videotag.data.validation import validate_data  # noqa: E402


def write_shards(folder: str, videos: int, shards: int, low: int, seed: int = 0) -> str:
    """Synthetic YT8M-size shards of `low`-300 frames per video; returns their glob."""
    rng = np.random.default_rng(seed)
    per = -(-videos // shards)
    for s in range(shards):
        records = []
        for i in range(s * per, min(videos, (s + 1) * per)):
            frames = int(rng.integers(low, 301))
            labels = tuple(int(c) for c in rng.choice(3862, rng.integers(1, 6), replace=False))
            records.append(frame_record(f"v{i}".encode(), labels, frames=frames, seed=i))
        write_file(os.path.join(folder, f"train{s:04d}.tfrecord"), records)
    return os.path.join(folder, "train*.tfrecord")


def bare_parse(data, pattern: str, batch_size: int, shuffle: bool = False,
               repeat: bool = False) -> tf.data.Dataset:
    """The ceiling: read, batch, one parse op, uint8 frames, multi-hot labels; with
    `shuffle`, the records shuffled first as the training pipeline shuffles them
    (`data.shuffle_buffer`); with `repeat`, the records repeated forever (before the
    batches, as `make_dataset(..., repeat=True)` does)."""
    files = list_files(pattern)
    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=min(data.num_parallel_reads, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    if shuffle:
        ds = ds.shuffle(data.shuffle_buffer, seed=0, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size).map(bare_parse_fn(data), num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=False).prefetch(tf.data.AUTOTUNE)


def bare_parse_fn(data):
    """The bare parse's map function: serialized records [B] to the batch."""
    sizes = dict(zip(data.feature_names, data.feature_sizes))

    def parse(serialized):
        context, lists, lengths = tf.io.parse_sequence_example(
            serialized,
            context_features={data.id_key: tf.io.FixedLenFeature([], tf.string),
                              "labels": tf.io.VarLenFeature(tf.int64)},
            sequence_features={n: tf.io.FixedLenSequenceFeature([], tf.string) for n in sizes})
        out = {n: tf.io.decode_raw(lists[n], tf.uint8, fixed_length=s)[:, :data.max_frames]
               for n, s in sizes.items()}
        out["num_frames"] = tf.cast(tf.minimum(tf.reduce_min(
            tf.stack([lengths[n] for n in sizes], 1), 1), data.max_frames), tf.int32)
        out["labels"] = tf.cast(tf.sparse.to_indicator(context["labels"], data.num_classes),
                                tf.float32)
        out["video_id"] = context[data.id_key]
        return out

    return parse


def iterate(ds: tf.data.Dataset, warmup: int = 0, batches: Optional[int] = None):
    """(videos/s, videos per CPU-second of this process) of `ds` (built already): one
    whole pass, timed from the moment its iterator (with its functions instantiated)
    is made; or, for a repeated `ds`, `batches` batches timed after its first `warmup`
    (the shuffle buffer filled)."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    timed = it if batches is None else itertools.islice(it, batches)
    start, cpu, count = time.perf_counter(), time.process_time(), 0
    for batch in timed:
        count += int(batch["num_frames"].shape[0])
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu)


def trace_batch(data, pattern: str, batch_size: int, calls: int = 10) -> None:
    """Prints where one batch's map function spends its time, by op type, for the
    bare parse and the training pipeline's parse (`RecordParser(frames="uint8",
    check_types=False)`: parse, checks, uint8 frames), from a TensorFlow profiler
    trace of `calls` calls each on the same `batch_size` records (one op at a time:
    run with `--trace_batch`, which sets one inter-op thread)."""
    from nextvlad_profile import trace_ops

    records = list(tf.data.TFRecordDataset(list_files(pattern)).take(batch_size))
    serialized = tf.stack(records)
    names = tf.fill([len(records)], "trace: record")
    parser = RecordParser(data, check_types=False, frames="uint8")
    functions = {"bare parse": tf.function(lambda s: bare_parse_fn(data)(s)),
                 "pipeline parse": tf.function(lambda s: parser.parse(s, names).features)}
    for fn in functions.values():
        for _ in range(3):  # traced and warm
            fn(serialized)
    by_type = {}
    # the function traced first pays for memory the process has not touched yet (its
    # padded decode took twice as long as the same op traced second): two rounds in
    # turn, the second kept
    for _ in range(2):
        for name, fn in functions.items():
            ops, wall = trace_ops(lambda: [fn(serialized) for _ in range(calls)], calls)
            types = collections.Counter()
            for op, ms in ops.items():
                types[op.rsplit(":", 1)[-1]] += ms
            by_type[name] = (types, wall)
    print(f"one batch of {len(records)} records: ms per call, the mean of {calls} traced "
          f"calls, one op at a time")
    print(f"{'op type':<28}" + "".join(f"{n:>16}" for n in functions))
    every = sorted(set().union(*(t for t, _ in by_type.values())),
                   key=lambda k: -max(t.get(k, 0.0) for t, _ in by_type.values()))
    for kind in every:
        cells = [by_type[n][0].get(kind, 0.0) for n in functions]
        if max(cells) >= 0.05:
            print(f"{kind:<28}" + "".join(f"{c:>16.2f}" for c in cells))
    for label, values in (("all ops", [sum(t.values()) for t, _ in by_type.values()]),
                          ("wall time of a call", [w for _, w in by_type.values()])):
        print(f"{label:<28}" + "".join(f"{v:>16.2f}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=600)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=160)
    parser.add_argument("--min_frames", type=int, default=152,
                        help="shortest video (the longest has 300 frames)")
    parser.add_argument("--steady_passes", type=int, default=3,
                        help="passes' worth of batches timed in the steady state (after one)")
    parser.add_argument("--trace_batch", action="store_true",
                        help="instead: where one batch's parse spends its time, by op type")
    args = parser.parse_args()
    if args.trace_batch:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    per_pass = -(-args.videos // args.batch_size)
    cfg = config_lib.load("nextvlad", [])
    with tempfile.TemporaryDirectory() as folder:
        pattern = write_shards(folder, args.videos, args.shards, args.min_frames)
        if args.trace_batch:
            trace_batch(cfg.data, pattern, args.batch_size)
            return
        frames = []
        for raw in tf.data.TFRecordDataset(list_files(pattern)):
            frames.append(len(tf.train.SequenceExample.FromString(raw.numpy())
                              .feature_lists.feature_list["rgb"].feature))
        names = ("bare parse", "training pipeline", "validate-data", "pipeline, file order",
                 "bare parse, shuffled", "bare parse, steady", "bare shuffled, steady",
                 "pipeline, steady")
        rates = {k: [] for k in names}  # (wall, CPU) per round
        loads = []
        for _ in range(args.rounds):
            rates["bare parse"].append(iterate(bare_parse(cfg.data, pattern, args.batch_size)))
            rates["training pipeline"].append(iterate(make_dataset(
                cfg.data, pattern, args.batch_size, training=True, seed=0)))
            rates["pipeline, file order"].append(iterate(make_dataset(
                cfg.data, pattern, args.batch_size, training=False)))
            rates["bare parse, shuffled"].append(iterate(bare_parse(
                cfg.data, pattern, args.batch_size, shuffle=True)))
            result = validate_data(cfg.data, pattern, progress_seconds=0)
            assert result.ok and result.records == args.videos
            rates["validate-data"].append((result.rate, result.records / result.cpu_seconds))
            timed = (per_pass, per_pass * args.steady_passes)
            rates["bare parse, steady"].append(iterate(bare_parse(
                cfg.data, pattern, args.batch_size, repeat=True), *timed))
            rates["bare shuffled, steady"].append(iterate(bare_parse(
                cfg.data, pattern, args.batch_size, shuffle=True, repeat=True), *timed))
            rates["pipeline, steady"].append(iterate(make_dataset(
                cfg.data, pattern, args.batch_size, training=True, seed=0, repeat=True), *timed))
            loads.append(os.getloadavg()[0])
    print(f"{args.videos} videos ({np.mean(frames):.0f} frames on average) in {args.shards} "
          f"shards, {args.rounds} rounds, load {min(loads):.1f}-{max(loads):.1f}")
    for clock, unit in enumerate(("videos/s", "videos per CPU-second")):
        medians = {k: statistics.median(r[clock] for r in v) for k, v in rates.items()}
        print(f"{unit} (median; rounds):")
        for name, rate in medians.items():
            print(f"{name:>20}: {rate:8.0f} ({', '.join(f'{r[clock]:.0f}' for r in rates[name])})")
        print(f"{'steady pipeline/bare':>20}: "
              f"{medians['pipeline, steady'] / medians['bare parse, steady']:8.2f}")
        print(f"{'steady pipe/shuffled':>20}: "
              f"{medians['pipeline, steady'] / medians['bare shuffled, steady']:8.2f}")
        print(f"{'pipeline / bare':>20}: "
              f"{medians['training pipeline'] / medians['bare parse']:8.2f}")
        print(f"{'validate / pipeline':>20}: "
              f"{medians['validate-data'] / medians['training pipeline']:8.2f}")
        print(f"{'file order / bare':>20}: "
              f"{medians['pipeline, file order'] / medians['bare parse']:8.2f}")
        print(f"{'pipeline / shuffled':>20}: "
              f"{medians['training pipeline'] / medians['bare parse, shuffled']:8.2f}")


if __name__ == "__main__":
    main()
