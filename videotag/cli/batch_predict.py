r"""Predict the top-k tags of every record with Apache Beam: JSON Lines shards.

    videotag batch-predict --saved_model=exports/nextvlad/1 \
        --input_data_pattern='data/test*.tfrecord' --output_prefix=runs/pred/test \
        --direct_num_workers=2 --direct_running_mode=multi_processing
    # -> runs/pred/test-00000-of-00002.jsonl, ... (each line what
    #    `videotag predict --format=jsonl` writes for that video),
    #    runs/pred/test.failed.jsonl (bad records skipped), runs/pred/test.summary.json

The same pipeline runs on Dataflow, Flink or Spark with their options (--runner,
...; see the README's "At scale"). A re-run replaces the previous run's files of the
prefix once it has succeeded; a failed run leaves them as they were. Bad records
stop the run or are skipped (dead letters), per --on_bad_record or the export's
data.on_bad_record. Needs the beam extra: pip install "videotag[beam]".
`python tools/batch_predict.py` takes the same flags.
"""

import sys

from absl import flags

from videotag.beam.options import parse_flags  # noqa: F401  (the command's flags parser)

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    from videotag.beam.options import define_inference_flags

    define_inference_flags()
    flags.DEFINE_integer("top_k", 20, "Tags per video.")
    flags.DEFINE_float("threshold", 0.0, "Leave out tags below this probability (after top_k).")
    flags.adopt_module_key_flags(sys.modules["videotag.beam.options"])  # listed by --help


def main(argv):
    """Runs the pipeline. Returns the exit status."""
    from videotag.beam.predict import PREDICTIONS, command_main

    return command_main(PREDICTIONS, argv, "batch-predict")
