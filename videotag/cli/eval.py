r"""Score a trained model with every metric and write a report; or compare two models.

    videotag eval --model_dir=runs/nextvlad
    videotag eval --model_dir=runs/nextvlad --eval_data_pattern='yt8m/validate*.tfrecord' \
        --top_k=20 --threshold=0.5 --report=reports/nextvlad.json
    videotag eval --compare runs/nextvlad runs/other

Prints a table and writes `<report>.json`, `<report>.md` (with the per-class AP table),
`<report>_pr_curve.png` and `<report>_ap_histogram.png`. The default report is
`<model_dir>/eval.json`, or `<first model_dir>/compare.json` with --compare. Compared
models are scored on the same records (--eval_data_pattern, default the first
model's validation data) and must have the same classes. `python tools/eval.py` takes
the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("model_dir", None, "Trained model directory.")
    flags.DEFINE_bool("compare", False,
                      "Compare two models: --compare model_dir_a model_dir_b.")
    flags.DEFINE_string("eval_data_pattern", None,
                        "Records to score; default the run's validation data.")
    flags.DEFINE_string("report", None,
                        "JSON report path; the Markdown and PNG files go beside it.")
    flags.DEFINE_integer("batch_size", None,
                         "Videos per batch; default the run's eval.batch_size.")
    flags.DEFINE_integer("top_k", None,
                         "k of GAP@k, mAP and Hit@k; default the run's eval.top_k (20).")
    flags.DEFINE_float("threshold", None, "Score at or above which a tag is predicted "
                       "(precision/recall/F1); default 0.5.")
    flags.DEFINE_enum("on_bad_record", None, ["error", "skip"], "Bad records: stop (error) or "
                      "drop and count (skip); default the run's config.")


def main(argv):
    """Scores (or compares) and writes the report. Returns the exit status."""
    import os

    from videotag.data import list_files
    from videotag.data.labels import load_label_names
    from videotag.errors import ConfigError, DataError
    from videotag.evaluation.evaluator import format_metrics, run_evaluation
    from videotag.evaluation.report import format_table, write_report
    from videotag.files import check_output_file
    from videotag.training.trainer import load_trained

    if FLAGS.compare:
        model_dirs = argv[1:]
        if len(model_dirs) != 2 or FLAGS.model_dir:
            raise ConfigError("--compare takes two model directories: --compare DIR_A DIR_B "
                              f"(got {model_dirs or 'none'})")
    else:
        if argv[1:]:
            raise ConfigError(f"unexpected arguments {argv[1:]} (did you mean --compare?)")
        if not FLAGS.model_dir:
            raise ConfigError("--model_dir is required (or --compare DIR_A DIR_B)")
        model_dirs = [FLAGS.model_dir]

    loaded = [load_trained(d) for d in model_dirs]
    first_cfg = loaded[0][0]
    pattern = FLAGS.eval_data_pattern or first_cfg.data.eval_data_pattern
    if not pattern:
        raise ConfigError(f"{model_dirs[0]}: the config has no data.eval_data_pattern; "
                          "pass --eval_data_pattern")
    if len(loaded) == 2 and loaded[1][0].data.num_classes != first_cfg.data.num_classes:
        raise ConfigError(
            f"cannot compare: {model_dirs[0]} has {first_cfg.data.num_classes} classes, "
            f"{model_dirs[1]} has {loaded[1][0].data.num_classes} (data.num_classes)")
    # inputs and outputs are checked before the work
    list_files(pattern)
    report = FLAGS.report or os.path.join(
        model_dirs[0], "eval.json" if len(model_dirs) == 1 else "compare.json")
    check_output_file(report, "report")
    try:
        class_names = load_label_names(first_cfg.data.label_file, first_cfg.data.num_classes)
    except DataError as exc:
        print(f"warning: {exc}; classes are shown by id", file=sys.stderr)
        class_names = [str(i) for i in range(first_cfg.data.num_classes)]

    evaluations = []
    for model_dir, (cfg, model) in zip(model_dirs, loaded):
        cfg.data.on_bad_record = FLAGS.on_bad_record or cfg.data.on_bad_record
        evaluation = run_evaluation(
            model, cfg, pattern, FLAGS.batch_size, top_k=FLAGS.top_k or first_cfg.eval.top_k,
            threshold=first_cfg.eval.threshold if FLAGS.threshold is None else FLAGS.threshold)
        evaluations.append(evaluation)
        prefix = f"{model_dir}: " if len(loaded) == 2 else ""
        print(prefix + format_metrics(evaluation.metrics))
        skipped = evaluation.metrics.get("skipped_records")
        if skipped:
            print(f"{prefix}skipped bad records: {skipped}", file=sys.stderr)

    names = ["model"] if len(loaded) == 1 else ["A", "B"]
    print()
    if len(loaded) == 2:
        print(f"A = {model_dirs[0]}\nB = {model_dirs[1]}")
    print(format_table([e.metrics for e in evaluations], names))
    paths = write_report(report, evaluations, class_names, model_dirs, names)
    print("\nreport: " + ", ".join(str(p) for p in paths.values()))
    return 0
