r"""Write the L2-normalised embedding of every record with Apache Beam: TFRecord shards.

    videotag batch-embed --saved_model=exports/nextvlad/1 \
        --input_data_pattern='data/test*.tfrecord' --output_prefix=runs/emb/test \
        --direct_num_workers=2 --direct_running_mode=multi_processing
    # -> runs/emb/test-00000-of-00002.tfrecord, ...: Examples with id and embedding,
    #    as `videotag embed --format=tfrecord` writes; runs/emb/test.failed.jsonl,
    #    runs/emb/test.summary.json
    videotag build-index --embeddings=runs/emb/test --index=ivf   # reads the shards

The same pipeline runs on Dataflow, Flink or Spark with their options (see the
README's "At scale"). Re-runs replace the previous files of the prefix once they
have succeeded. Needs the beam extra: pip install "videotag[beam]".
`python tools/batch_embed.py` takes the same flags.
"""

import sys

from absl import flags

from videotag.beam.options import parse_flags  # noqa: F401  (the command's flags parser)

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    from videotag.beam.options import define_inference_flags

    define_inference_flags()
    flags.adopt_module_key_flags(sys.modules["videotag.beam.options"])  # listed by --help


def main(argv):
    """Runs the pipeline. Returns the exit status."""
    from videotag.beam.predict import EMBEDDINGS, command_main

    return command_main(EMBEDDINGS, argv, "batch-embed")
