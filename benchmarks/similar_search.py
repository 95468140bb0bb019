"""Exact similar-video search at scale: time and memory of `videotag.retrieval` on a
synthetic embeddings file of a million videos.

    python benchmarks/similar_search.py [--rows 1000000 --dim 1024 --queries 2048]

Writes `--rows` x `--dim` random unit vectors as tools/embed.py does (a 4 GB .npy for
the defaults, in a temporary folder, removed at the end), then, reading it as a memory
map:
- one query against every video, blocked (`top_k_similar`, --block_size rows at a
  time) and, as the baseline in the same run, the plain way: one matrix-vector product
  over the whole map and `np.argpartition`;
- `--queries` videos against every video, blocked (what `tools/similar.py --all` does
  per block of queries), to extrapolate the all-against-all time.
Memory is the peak of NumPy's allocations (tracemalloc): the pages of the memory map
belong to the OS page cache, not to the process heap.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from videotag.retrieval.embeddings import NpyRowWriter, l2_normalize  # noqa: E402
from videotag.retrieval.similar import top_k_similar  # noqa: E402


def _measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=2048)
    parser.add_argument("--block_size", type=int, default=4096)
    parser.add_argument("--top_k", type=int, default=10)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "emb.npy"
        start = time.perf_counter()
        writer = NpyRowWriter(path, args.dim)
        for begin in range(0, args.rows, 65536):
            n = min(65536, args.rows - begin)
            writer.write(l2_normalize(rng.standard_normal((n, args.dim), dtype=np.float32)))
        writer.close()
        print(f"wrote {args.rows} x {args.dim} float32 ({path.stat().st_size / 2**30:.1f} GiB) "
              f"in {time.perf_counter() - start:.0f} s")
        vectors = np.load(path, mmap_mode="r")
        query = np.asarray(vectors[123:124])

        def plain():
            scores = np.asarray(vectors @ query[0])
            scores[123] = -np.inf
            best = np.argpartition(-scores, args.top_k)[:args.top_k]
            return best[np.argsort(-scores[best])]

        def blocked():
            return top_k_similar(query, vectors, args.top_k, args.block_size,
                                 exclude=np.array([123]))[0][0]

        _measure(plain)  # first pass: pages the file in, for both
        rounds = [(_measure(plain), _measure(blocked)) for _ in range(3)]
        (want, t_plain, m_plain), (got, t_blocked, m_blocked) = min(
            rounds, key=lambda r: r[1][1])
        assert list(got) == list(want), (got, want)
        print(f"one query among {args.rows}: blocked {t_blocked:.2f} s (peak heap "
              f"{m_blocked:.0f} MiB); plain product {t_plain:.2f} s ({m_plain:.0f} MiB); "
              f"ratio {t_blocked / t_plain:.2f} (best of 3)")

        queries = np.asarray(vectors[: args.queries])
        _, t_many, m_many = _measure(lambda: top_k_similar(
            queries, vectors, args.top_k, args.block_size, exclude=np.arange(args.queries)))
        per_query = t_many / args.queries
        print(f"{args.queries} queries among {args.rows}: {t_many:.1f} s ({1000 * per_query:.1f} "
              f"ms per query, peak heap {m_many:.0f} MiB); all {args.rows} against all: about "
              f"{per_query * args.rows / 3600:.1f} h")
        print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
