r"""Check a glob of shards before a long run: layout, bad records, histograms, labels.

    videotag validate-data --data_pattern='yt8m/frame/train*.tfrecord' \
        --override data.label_file=yt8m/vocabulary.csv --report=reports/train.json
    videotag validate-data --data_pattern='new/*.tfrecord' --model_dir=runs/nextvlad

Every record is judged by the parser a run uses, with the data config of
--model_name/--config/--override (or of the run in --model_dir): the kind of records,
the id key, the features and their sizes, title and category are compared with the
config; bad records are counted by reason with the first few named; corrupt or
truncated shards are named; the frame-count and labels-per-video histograms and the
label frequencies against the label file are printed, and with --report written to
<report> (JSON) and <report stem>_histograms.png. Exit status 1 when anything is bad.
`python tools/validate_data.py` takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("data_pattern", None, "Glob (or comma-separated globs) of the shards.",
                        required=True)
    flags.DEFINE_string("model_name", "NEXTVLAD", "Model whose packaged config gives the data "
                        "settings (with --config and --override, as for videotag train).")
    flags.DEFINE_string("config", None, "YAML config file or packaged config name.")
    flags.DEFINE_multi_string("override", [], "key=value config override (repeatable).")
    flags.DEFINE_string("model_dir", None, "Check against the data config of this trained run "
                        "instead.")
    flags.DEFINE_string("label_file", None, "Shortcut for --override data.label_file=...")
    flags.DEFINE_string("report", None, "JSON report path; the PNG of the histograms goes "
                        "beside it (<stem>_histograms.png).")
    flags.DEFINE_integer("examples", 3, "Bad records named per reason.")
    flags.DEFINE_float("progress_seconds", 10.0, "Seconds between progress lines (0: none).")


def main(argv):
    """Validates the shards and prints (and writes) the report; 1 when anything is bad."""
    del argv
    from videotag import config as config_lib
    from videotag.data.labels import check_label_files
    from videotag.data.validation import validate_data
    from videotag.data.validation_report import format_validation, write_validation
    from videotag.output_checks import check_output_file

    overrides = list(FLAGS.override) + [f"data.train_data_pattern={FLAGS.data_pattern!r}"]
    if FLAGS.label_file:
        overrides.append(f"data.label_file={FLAGS.label_file!r}")
    if FLAGS.model_dir:
        source = f"{FLAGS.model_dir.rstrip('/')}/config.yaml"
        cfg = config_lib.load(source, overrides)
    else:
        cfg = config_lib.load(FLAGS.config or FLAGS.model_name, overrides,
                              model_name=FLAGS.model_name)
    check_label_files(cfg.data)
    if FLAGS.report:
        check_output_file(FLAGS.report, "report")  # before the work
    result = validate_data(cfg.data, FLAGS.data_pattern, FLAGS.examples, FLAGS.progress_seconds)
    print(format_validation(result))
    if FLAGS.report:
        paths = write_validation(result, FLAGS.report)
        print("report: " + ", ".join(paths), file=sys.stderr)
    return 0 if result.ok else 1
