"""Records/s of `videotag validate-data` against the training input pipeline on the same
shards, in the same run (the issue asks the check to read at least as fast as
training does).

Writes synthetic YT8M-size frame-level shards (1024 + 128 bytes per frame, 1-300
frames, 1-5 labels of 3862) to a temporary folder, then alternates rounds of
`videotag.data.validation.validate_data` (every record parsed and checked, the value
types where a chunk's parse fails on them; all frames counted) and of iterating `videotag.data.make_dataset` (the training
pipeline with shuffling, batch 160, frames decoded to the batch's longest video),
and reports the median records/s of each and their ratio, by the wall clock and by
the CPU time of the process (the steadier one on a machine shared with other jobs).
Both clocks start once the pipeline is built (the parser traced and instantiated)
and stop after its last element.

    .venv/bin/python benchmarks/validate_data.py --videos 2000 --shards 8 --rounds 3
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.helpers import frame_record, write_file  # noqa: E402
from videotag import config as config_lib  # noqa: E402
from videotag.data import make_dataset  # noqa: E402
from videotag.data.validation import validate_data  # noqa: E402


def write_shards(folder: str, videos: int, shards: int, seed: int = 0) -> str:
    """Synthetic YT8M-size shards; returns their glob."""
    rng = np.random.default_rng(seed)
    per = -(-videos // shards)
    for s in range(shards):
        records = []
        for i in range(s * per, min(videos, (s + 1) * per)):
            frames = int(rng.integers(1, 301))
            labels = tuple(int(c) for c in rng.choice(3862, rng.integers(1, 6), replace=False))
            records.append(frame_record(f"v{i}".encode(), labels, frames=frames, seed=i))
        write_file(os.path.join(folder, f"train{s:04d}.tfrecord"), records)
    return os.path.join(folder, "train*.tfrecord")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=160)
    args = parser.parse_args()
    cfg = config_lib.load("nextvlad", [])
    with tempfile.TemporaryDirectory() as folder:
        pattern = write_shards(folder, args.videos, args.shards)
        rates = {"validate-data": [], "training pipeline": []}  # (wall, CPU) per round
        for _ in range(args.rounds):
            result = validate_data(cfg.data, pattern, progress_seconds=0)
            assert result.ok and result.records == args.videos
            rates["validate-data"].append((result.rate, result.records / result.cpu_seconds))
            # both clocks run from the first read (`Validation.seconds` likewise starts
            # once the pipeline is built and its parser instantiated: here by making
            # the iterator)
            ds = iter(make_dataset(cfg.data, pattern, args.batch_size, training=True, seed=0))
            start, cpu, count = time.perf_counter(), time.process_time(), 0
            for batch in ds:
                count += int(batch["num_frames"].shape[0])
            rates["training pipeline"].append((count / (time.perf_counter() - start),
                                               count / (time.process_time() - cpu)))
    print(f"{args.videos} videos in {args.shards} shards, {args.rounds} rounds, "
          f"load {os.getloadavg()[0]:.1f}")
    for clock, unit in enumerate(("records/s", "records per CPU-second")):
        medians = {k: statistics.median(r[clock] for r in v) for k, v in rates.items()}
        for name, rate in medians.items():
            print(f"{name:>18}: {rate:8.0f} {unit} (median)")
        print(f"{'ratio':>18}: {medians['validate-data'] / medians['training pipeline']:8.2f}")


if __name__ == "__main__":
    main()
