"""Build the faiss index of a set of embeddings and save it beside them.

    videotag build-index --embeddings=runs/emb/test --index=ivf
    videotag build-index --embeddings=runs/emb/test --index=hnsw --hnsw_m=32 \
        --ef_construction=80 --recall_queries=1000
    # -> runs/emb/test.hnsw.faiss and runs/emb/test.hnsw.json;
    #    videotag similar --embeddings=runs/emb/test --index=hnsw uses it

Kinds: ivf (k-means cells), hnsw (a graph), ivfpq (cells of compressed codes, for
collections that do not fit in memory), ivfpqfs (cells of 4-bit codes scanned with
SIMD, re-ranked exactly, optionally after a PCA: all against all at a million);
flat (exact) needs no file. Settings left at 0 are chosen from the number of
videos. --recall_queries=N measures the index's recall@top_k on N random videos
against the exact search. The embeddings are those
of `videotag embed` (<prefix>.npy) or `videotag batch-embed` (<prefix>-*-of-*.tfrecord).
Needs the faiss extra: pip install "videotag[faiss]". `python tools/build_index.py`
takes the same flags.
"""

import sys
import time

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("embeddings", None, "Prefix given to videotag embed or batch-embed.",
                        required=True)
    flags.DEFINE_enum("index", "ivf", ["ivf", "hnsw", "ivfpq", "ivfpqfs"], "Index kind.")
    flags.DEFINE_integer("nlist", 0, "IVF cells (ivf, ivfpq); 0: 4 sqrt(N).")
    flags.DEFINE_integer("hnsw_m", 32, "HNSW neighbours per video.")
    flags.DEFINE_integer("ef_construction", 80, "HNSW candidates while building.")
    flags.DEFINE_integer("pq_m", 0, "PQ sub-quantizers (must divide the size); 0: size/16 "
                         "(ivfpq), PCA size/2 (ivfpqfs).")
    flags.DEFINE_integer("pq_bits", 0, "ivfpq bits per code; 0: 8 (fewer for few videos).")
    flags.DEFINE_integer("pca", 0, "ivfpqfs PCA dimensions; 0: none.")
    flags.DEFINE_integer("train_size", 0, "Videos the k-means learns from; 0: automatic.")
    flags.DEFINE_integer("seed", 0, "Seed of the training sample and the k-means.")
    flags.DEFINE_integer("recall_queries", 0, "Measure recall@top_k on this many random "
                         "videos against the exact search (0: do not).")
    flags.DEFINE_integer("top_k", 10, "k of the recall measurement.")
    flags.DEFINE_integer("nprobe", 16, "IVF cells scanned per query, for the measurement.")
    flags.DEFINE_integer("ef_search", 64, "HNSW candidates per query, for the measurement.")
    flags.DEFINE_integer("refine", 4, "ivfpq/ivfpqfs candidates factor, for the measurement.")


def main(argv):
    """Builds, saves and optionally measures the index. Returns the exit status."""
    del argv
    from videotag.errors import VideotagError
    from videotag.retrieval import load_vectors
    from videotag.retrieval.index import (
        IndexInfo,
        IndexSettings,
        SearchSettings,
        build_index,
        require_faiss,
        save_index,
    )

    require_faiss()
    if min(FLAGS.top_k, FLAGS.nprobe, FLAGS.ef_search, FLAGS.refine, FLAGS.hnsw_m) <= 0 or min(
            FLAGS.nlist, FLAGS.pq_m, FLAGS.pq_bits, FLAGS.train_size, FLAGS.recall_queries,
            FLAGS.pca) < 0:
        raise VideotagError("index settings must be positive (or 0: automatic)")
    embeddings = load_vectors(FLAGS.embeddings)
    settings = IndexSettings(FLAGS.index, FLAGS.nlist, FLAGS.hnsw_m, FLAGS.ef_construction,
                             FLAGS.pq_m, FLAGS.pq_bits, FLAGS.train_size, FLAGS.seed,
                             FLAGS.pca)
    began = time.time()
    index, resolved = build_index(embeddings.vectors, settings)
    info = IndexInfo(resolved, len(embeddings.ids), int(embeddings.vectors.shape[1]),
                     embeddings.stamp, time.time() - began)
    path = save_index(index, info, FLAGS.embeddings)
    print(f"built {resolved.factory()} of {info.count} videos ({info.dim} dimensions) in "
          f"{info.build_seconds:.1f} s: {path}", file=sys.stderr)
    if FLAGS.recall_queries:
        from videotag.retrieval.index import measure_recall

        search = SearchSettings(FLAGS.nprobe, FLAGS.ef_search, FLAGS.refine)
        recall, per_second = measure_recall(index, embeddings.vectors, FLAGS.recall_queries,
                                            FLAGS.top_k, search, FLAGS.seed)
        print(f"recall@{FLAGS.top_k} {recall:.4f} on {min(FLAGS.recall_queries, info.count)} "
              f"random videos against the exact search ({per_second:.0f} queries/s)",
              file=sys.stderr)
    return 0
