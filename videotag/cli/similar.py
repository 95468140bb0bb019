"""The most similar videos (exact cosine of the embeddings) of some videos or of all.

    videotag similar --embeddings=runs/emb/test --query_id=abc123 --top_k=10
    videotag similar --embeddings=runs/emb/test --all --output_file=similar.tsv

`python tools/similar.py` takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("embeddings", None, "Prefix given to videotag embed (<prefix>.npy, "
                        "<prefix>.ids.txt).", required=True)
    flags.DEFINE_multi_string("query_id", None, "Video id to query (repeatable).")
    flags.DEFINE_bool("all", False, "Query every video.")
    flags.DEFINE_integer("top_k", 10, "Similar videos per query (the video itself excluded).")
    flags.DEFINE_integer("block_size", 4096,
                         "Videos scored at once (memory ~ block_size^2 floats).")
    flags.DEFINE_enum("format", "tsv", ["tsv", "jsonl"], "TSV (query_id, rank, similar_id, "
                      "score) or JSON Lines.")
    flags.DEFINE_string("output_file", None, "Output file (default: standard output).")
    flags.DEFINE_float("progress_seconds", 10.0, "Seconds between progress lines (0: none).")


def main(argv):
    """Searches and writes the similar videos. Returns the exit status."""
    del argv
    from videotag.errors import VideotagError
    from videotag.files import check_output_file, open_output
    from videotag.retrieval import load_embeddings, similar_videos, write_similar

    if bool(FLAGS.query_id) == FLAGS.all:
        raise VideotagError("give --query_id (one or more) or --all")
    if FLAGS.top_k <= 0 or FLAGS.block_size <= 0:
        raise VideotagError("--top_k and --block_size must be positive")
    ids, vectors = load_embeddings(FLAGS.embeddings)
    if FLAGS.output_file:
        check_output_file(FLAGS.output_file, "results file")  # before the search
    results = similar_videos(ids, vectors, None if FLAGS.all else FLAGS.query_id,
                             FLAGS.top_k, FLAGS.block_size, verbose=True,
                             progress_seconds=FLAGS.progress_seconds)
    with open_output(FLAGS.output_file, what="results file") as out:
        count = write_similar(results, out, FLAGS.format)
    print(f"searched {count} videos among {len(ids)}", file=sys.stderr)
    return 0
