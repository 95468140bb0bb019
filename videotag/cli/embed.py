r"""Write the L2-normalised embedding of every video, for similar-video recall.

    videotag embed --saved_model=exports/nextvlad/1 \
        --input_data_pattern='data/test*.tfrecord' --output=runs/emb/test
    # -> runs/emb/test.npy (float32 [N, D]) and runs/emb/test.ids.txt
    #    (--format=tfrecord: runs/emb/test.tfrecord, Examples with id and embedding)
    videotag embed --model_dir=runs/nextvlad --checkpoint=best \
        --input_data_pattern='data/test*.tfrecord' --output=runs/emb/test

`python tools/embed.py` takes the same flags.
"""

import sys

from absl import flags

from videotag.cli.model_flags import define_checkpoint_flag

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("model_dir", None, "Trained model directory.")
    flags.DEFINE_string("saved_model", None, "Exported SavedModel version folder.")
    flags.DEFINE_string("input_data_pattern", None, "Glob of records to embed.", required=True)
    flags.DEFINE_string("output", None, "Output prefix: <output>.npy + <output>.ids.txt and/or "
                        "<output>.tfrecord.", required=True)
    flags.DEFINE_list("format", ["npy"], "npy and/or tfrecord (comma-separated).")
    flags.DEFINE_integer("batch_size", 256, "Videos per batch.")
    flags.DEFINE_enum("on_bad_record", None, ["error", "skip"],
                      "Bad records (with --model_dir): stop or drop and count.")
    flags.DEFINE_float("progress_seconds", 10.0, "Seconds between progress lines (0: none).")
    define_checkpoint_flag(__name__)


def main(argv):
    """Embeds every video and writes the files. Returns the exit status."""
    del argv
    from videotag.data import list_files
    from videotag.errors import VideotagError
    from videotag.output_checks import check_output_file
    from videotag.retrieval import (
        EMBEDDING_FORMATS,
        embedding_batches,
        write_embeddings,
    )
    from videotag.retrieval.embeddings import embedding_paths

    if bool(FLAGS.model_dir) == bool(FLAGS.saved_model):
        raise VideotagError("give exactly one of --model_dir and --saved_model")
    if FLAGS.checkpoint and FLAGS.saved_model:
        raise VideotagError("--checkpoint picks the weights of a --model_dir")
    unknown = [f for f in FLAGS.format if f not in EMBEDDING_FORMATS]
    if unknown or not FLAGS.format:
        raise VideotagError(f"--format takes {' and/or '.join(EMBEDDING_FORMATS)}, got {unknown}")
    for path in embedding_paths(FLAGS.output, FLAGS.format):  # before the work
        check_output_file(path, "embeddings file")
    list_files(FLAGS.input_data_pattern)
    batches = embedding_batches(FLAGS.input_data_pattern, FLAGS.model_dir, FLAGS.saved_model,
                                FLAGS.batch_size, FLAGS.on_bad_record, FLAGS.checkpoint)
    count, dim = write_embeddings(batches, FLAGS.output, FLAGS.format,
                                  progress_seconds=FLAGS.progress_seconds)
    print(f"embedded {count} videos ({dim} dimensions) to {FLAGS.output}."
          f"{{{','.join(['npy,ids.txt' if f == 'npy' else f for f in FLAGS.format])}}}",
          file=sys.stderr)
    return 0
