r"""Score a trained model with every metric and write a report; or compare two models.

    videotag eval --model_dir=runs/nextvlad
    videotag eval --model_dir=runs/nextvlad --eval_data_pattern='yt8m/validate*.tfrecord' \
        --top_k=20 --threshold=0.5 --hit_at=1,2,5 --report=reports/nextvlad.json
    videotag eval --model_dir=runs/nextvlad --checkpoint=best
    videotag eval --compare runs/nextvlad runs/other
    videotag eval --ensemble runs/nextvlad runs/softdbof exports/trn/1 --ensemble_weights=2,1,1
    videotag eval --segments --model_dir=runs/nextvlad \
        --eval_data_pattern='yt8m/3/frame/validate*.tfrecord' --top_n=100000
    videotag eval --segments --submission=submission.csv --eval_data_pattern=... \
        --model_dir=runs/nextvlad

Prints a table and writes `<report>.json`, `<report>.md` (with the per-class AP table),
`<report>_pr_curve.png` and `<report>_ap_histogram.png`. The default report is
`<model_dir>/eval.json`, `<first model_dir>/compare.json` with --compare, or
`<first member>/ensemble_eval.json` with --ensemble (`./ensemble_eval.json` when the
first member is a SavedModel). Compared models and ensemble members are scored on the
same records (--eval_data_pattern, default the first model's validation data) and
must have the same classes.

--segments scores every segment with the YT8M 2019 segment metric (per class the top
--top_n segments, rated pairs only; see videotag/evaluation/segments.py) and writes
`<model_dir>/eval_segments.json` (or --report) with the per-class AP (the weights of
--checkpoint); with --submission it scores a submission file (`Class,Segments`)
instead of the model, with the model directory's data settings. `python tools/eval.py`
takes the same flags.
"""

import sys

from absl import flags

from videotag.cli.model_flags import define_checkpoint_flag, define_ensemble_flags

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
    flags.DEFINE_list("hit_at", None, "The k of the Hit@k figures besides Hit@top_k, e.g. "
                      "1,2,5 (any k; GAP and mAP keep --top_k); default the run's eval.hit_at.")
    define_checkpoint_flag(__name__)
    define_ensemble_flags(__name__)
    flags.DEFINE_bool("segments", False, "The segment metric (YT8M 2019) on segment-rated "
                      "records.")
    flags.DEFINE_integer("top_n", 100_000, "With --segments: segments ranked per class.")
    flags.DEFINE_string("submission", None, "With --segments: score this submission file "
                        "instead of the model.")
    flags.DEFINE_string("segment_label_file", None, "With --segments: the segment classes "
                        "(segment_label_ids.csv); default the run's.")
    flags.DEFINE_integer("segment_context", None, "With --segments: frames on each side of a "
                         "segment that its window adds; default the run's "
                         "data.segment_context (0).")


def _hit_at():
    from videotag.errors import ConfigError

    if FLAGS.hit_at is None:
        return None
    try:
        ks = [int(k) for k in FLAGS.hit_at]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise ConfigError(f"--hit_at takes positive integers, e.g. 1,2,5 (got "
                          f"{','.join(FLAGS.hit_at) or 'none'})")
    return ks


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

    if FLAGS.segments:
        return _segments(argv)
    hit_at = _hit_at()
    if FLAGS.ensemble:
        from videotag.cli.model_flags import load_ensemble_from_flags

        model, cfg, members = load_ensemble_from_flags(argv, ["model_dir", "compare"])
        model_dirs = [f"ensemble of {', '.join(m.source for m in members)}"]
        loaded = [(cfg, model)]
        first = members[0].source
        default_report = os.path.join(
            first if os.path.isfile(os.path.join(first, "config.yaml")) else ".",
            "ensemble_eval.json")
    elif FLAGS.compare:
        model_dirs = argv[1:]
        if len(model_dirs) != 2 or FLAGS.model_dir:
            raise ConfigError("--compare takes two model directories: --compare DIR_A DIR_B "
                              f"(got {model_dirs or 'none'})")
    else:
        if argv[1:]:
            raise ConfigError(f"unexpected arguments {argv[1:]} (did you mean --compare or "
                              "--ensemble?)")
        if not FLAGS.model_dir:
            raise ConfigError("--model_dir is required (or --compare DIR_A DIR_B, or "
                              "--ensemble A B ...)")
        model_dirs = [FLAGS.model_dir]
    if not FLAGS.ensemble:
        loaded = [load_trained(d, FLAGS.checkpoint) for d in model_dirs]
        default_report = os.path.join(
            model_dirs[0], "eval.json" if len(loaded) == 1 else "compare.json")
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
    report = FLAGS.report or default_report
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
            threshold=first_cfg.eval.threshold if FLAGS.threshold is None else FLAGS.threshold,
            hit_at=hit_at)
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


def _segments(argv):
    """eval --segments: the segment metric of a model, or of a submission file."""
    import json
    import os

    from videotag.data.labels import load_label_names
    from videotag.errors import ConfigError
    from videotag.evaluation.evaluator import format_metrics
    from videotag.evaluation.segment_scoring import evaluate_submission, run_segment_evaluation
    from videotag.files import open_output
    from videotag.training.trainer import load_trained

    if argv[1:] or FLAGS.compare or FLAGS.ensemble:
        raise ConfigError("--segments scores one model directory (--model_dir)")
    if FLAGS.hit_at is not None:
        raise ConfigError("--hit_at is a video-level figure; --segments reports the segment "
                          "metric (MAP@--top_n over the rated segments) only")
    if not FLAGS.model_dir:
        raise ConfigError("--segments needs --model_dir (its data settings; the model unless "
                          "--submission is given)")
    if FLAGS.top_n <= 0:
        raise ConfigError("--top_n must be positive")
    cfg, model = load_trained(FLAGS.model_dir, FLAGS.checkpoint)
    cfg.data.on_bad_record = FLAGS.on_bad_record or cfg.data.on_bad_record
    cfg.data.segment_label_file = FLAGS.segment_label_file or cfg.data.segment_label_file
    if FLAGS.segment_context is not None:
        if FLAGS.segment_context < 0:
            raise ConfigError("--segment_context must not be negative")
        cfg.data.segment_context = FLAGS.segment_context
    pattern = FLAGS.eval_data_pattern or cfg.data.eval_data_pattern
    if not pattern:
        raise ConfigError(f"{FLAGS.model_dir}: the config has no data.eval_data_pattern; "
                          "pass --eval_data_pattern")
    if FLAGS.submission:
        metrics = evaluate_submission(FLAGS.submission, cfg, pattern, FLAGS.top_n)
        print(f"{FLAGS.submission}: segment mAP@{metrics['top_n']} {metrics['segment_map']:.4f}  "
              f"({metrics['num_submitted_classes']} classes submitted, "
              f"{metrics['num_rated_pairs']} rated pairs)")
        return 0
    evaluation = run_segment_evaluation(model, cfg, pattern, FLAGS.batch_size, FLAGS.top_n)
    print(format_metrics(evaluation.metrics))
    names = load_label_names(cfg.data.label_file, cfg.data.num_classes)
    ap, positives = evaluation.ranking.per_class_ap()
    per_class = [{"id": int(c), "name": names[c], "ap": float(ap[c]),
                  "positives": int(positives[c])} for c in evaluation.classes if positives[c]]
    report = FLAGS.report or os.path.join(FLAGS.model_dir, "eval_segments.json")
    with open_output(report) as out:
        json.dump({"model_dir": FLAGS.model_dir, "data": pattern, "metrics": evaluation.metrics,
                   "per_class": per_class}, out, indent=2)
    print(f"report: {report}")
    return 0
