r"""Extract YT8M frame-level records from your own videos with Apache Beam.

    videotag batch-extract --input=videos/manifest.tsv --output_dir=features \
        --pca_dir=pca --audio_weights=vggish_model.ckpt --label_file=vocabulary.csv \
        --direct_num_workers=2 --direct_running_mode=multi_processing
    # -> features/part-00000-of-00002.tfrecord, ..., failed.jsonl (the videos that
    #    failed, with the reason), extraction.yaml, summary.json

The settings, inputs (folders, globs, video files, manifests; any tf.io.gfile path,
e.g. gs://) and records are those of `videotag extract`; the PCA must exist (fit it
with `videotag extract --fit_pca` on a sample of the videos, or use the YT8M release
files). The same pipeline runs on Dataflow, Flink or Spark with their options (see
the README's "At scale"). A re-run replaces the output folder once it has succeeded
(a folder batch-extract did not write is never replaced). Exit status 1 when a video
failed (the others are written). Needs the beam extra: pip install "videotag[beam]".
`python tools/batch_extract.py` takes the same flags.
"""

import sys

from absl import flags

from videotag.beam.options import parse_flags  # noqa: F401  (the command's flags parser)

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    from videotag.beam.options import define_pipeline_flags
    from videotag.cli.extract import define_settings_flags

    define_settings_flags()
    define_pipeline_flags()
    flags.adopt_module_key_flags(sys.modules["videotag.cli.extract"])  # listed by --help
    flags.adopt_module_key_flags(sys.modules["videotag.beam.options"])  # listed by --help


def main(argv):
    """Runs the pipeline. Returns 1 when a video failed, else 0."""
    from videotag.beam import require_beam
    from videotag.cli.extract import settings_from_flags
    from videotag.errors import ConfigError

    require_beam()
    from videotag.beam.extract import FAILED, run_extraction
    from videotag.beam.options import pipeline_options
    from videotag.beam.run import report_failures

    options = pipeline_options(argv[1:], FLAGS.beam_log_level)
    cfg, inputs = settings_from_flags()
    if not FLAGS.output_dir:
        raise ConfigError("give --output_dir")
    summary = run_extraction(cfg, inputs, FLAGS.output_dir, options, FLAGS.num_shards)
    counts = summary.counts
    parts = [f"extracted {counts.get('videos_extracted', 0)} videos "
             f"({counts.get('frames', 0)} frames) in {summary.seconds:.1f} s "
             f"({summary.rate('videos_extracted'):.2f} videos/s; {summary.runner})"]
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    if counts.get("videos_without_audio"):
        parts.append(f"{counts['videos_without_audio']} without audio")
    if counts.get("ignored_files"):
        parts.append(f"{counts['ignored_files']} file(s) without a video extension ignored")
    print("; ".join(parts) + f"; records in {FLAGS.output_dir}", file=sys.stderr)
    return report_failures(summary, "video(s)", f"{FLAGS.output_dir.rstrip('/')}/{FAILED}")
