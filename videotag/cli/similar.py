"""The most similar videos (cosine of the embeddings) of some videos or of all.

    videotag similar --embeddings=runs/emb/test --query_id=abc123 --top_k=10
    videotag similar --embeddings=runs/emb/test --all --output_file=similar.tsv
    # through a faiss index, built once and saved beside the embeddings
    videotag similar --embeddings=runs/emb/test --all --index=ivf --nprobe=32

Without --index the search is exact, in blocks (NumPy). --index=flat is exact too
(faiss); ivf, hnsw, ivfpq and ivfpqfs are approximate (see `videotag build-index`),
with the knobs --nprobe (ivf, ivfpq, ivfpqfs), --ef_search (hnsw) and --refine
(ivfpq, ivfpqfs); their scores are exact cosines. The embeddings are those of
`videotag embed` (<prefix>.npy) or of `videotag batch-embed`
(<prefix>-*-of-*.tfrecord). `python tools/similar.py` takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("embeddings", None, "Prefix given to videotag embed or batch-embed "
                        "(<prefix>.npy + <prefix>.ids.txt, or <prefix>-*-of-*.tfrecord).",
                        required=True)
    flags.DEFINE_multi_string("query_id", None, "Video id to query (repeatable).")
    flags.DEFINE_bool("all", False, "Query every video.")
    flags.DEFINE_integer("top_k", 10, "Similar videos per query (the video itself excluded).")
    flags.DEFINE_integer("block_size", 4096,
                         "Videos scored at once (memory ~ block_size^2 floats); queries per "
                         "faiss call with --index.")
    flags.DEFINE_enum("index", "none", ["none", "flat", "ivf", "hnsw", "ivfpq", "ivfpqfs"],
                      "none: exact NumPy search; a faiss index (built with its defaults and "
                      "saved when there is none; videotag build-index sets them).")
    flags.DEFINE_integer("nprobe", 16, "IVF cells scanned per query (ivf, ivfpq, ivfpqfs).")
    flags.DEFINE_integer("ef_search", 64, "HNSW candidates per query (hnsw).")
    flags.DEFINE_integer("refine", 4, "ivfpq, ivfpqfs: k x refine candidates rescored "
                         "exactly.")
    flags.DEFINE_enum("format", "tsv", ["tsv", "jsonl"], "TSV (query_id, rank, similar_id, "
                      "score) or JSON Lines.")
    flags.DEFINE_string("output_file", None, "Output file (default: standard output).")
    flags.DEFINE_float("progress_seconds", 10.0, "Seconds between progress lines (0: none).")


def main(argv):
    """Searches and writes the similar videos. Returns the exit status."""
    del argv
    from videotag.errors import VideotagError
    from videotag.files import check_output_file, open_output
    from videotag.retrieval import load_vectors, similar_videos, write_similar

    if bool(FLAGS.query_id) == FLAGS.all:
        raise VideotagError("give --query_id (one or more) or --all")
    if min(FLAGS.top_k, FLAGS.block_size, FLAGS.nprobe, FLAGS.ef_search, FLAGS.refine) <= 0:
        raise VideotagError("--top_k, --block_size, --nprobe, --ef_search and --refine must "
                            "be positive")
    embeddings = load_vectors(FLAGS.embeddings)
    if FLAGS.output_file:
        check_output_file(FLAGS.output_file, "results file")  # before the search
    queries = None if FLAGS.all else FLAGS.query_id
    if FLAGS.index == "none":
        results = similar_videos(embeddings.ids, embeddings.vectors, queries, FLAGS.top_k,
                                 FLAGS.block_size, verbose=True,
                                 progress_seconds=FLAGS.progress_seconds)
    else:
        from videotag.retrieval.index import (
            IndexSettings,
            SearchSettings,
            index_for,
            similar_with_index,
        )

        index = index_for(embeddings, FLAGS.embeddings, IndexSettings(FLAGS.index),
                          log=lambda line: print(line, file=sys.stderr))
        search = SearchSettings(FLAGS.nprobe, FLAGS.ef_search, FLAGS.refine, FLAGS.block_size)
        results = similar_with_index(embeddings, index, queries, FLAGS.top_k, search,
                                     verbose=True, progress_seconds=FLAGS.progress_seconds)
    with open_output(FLAGS.output_file, what="results file") as out:
        count = write_similar(results, out, FLAGS.format)
    print(f"searched {count} videos among {len(embeddings.ids)}", file=sys.stderr)
    return 0
