r"""Predict the top-k tags (and the category) of every video: CSV, JSON or JSON Lines.

    videotag predict --model_dir=runs/nextvlad \
        --input_data_pattern='data/test*.tfrecord' --output_file=pred.csv
    videotag predict --saved_model=exports/nextvlad/1 \
        --input_data_pattern='data/test*.tfrecord' --output_file=pred.jsonl --format=jsonl
    # video files: extracted with the training records' settings, VideoTag JSON out
    videotag predict --model_dir=runs/nextvlad --videos=my_videos/ \
        --extraction_config=features/extraction.yaml
    # the best checkpoint (train.keep_best), or an ensemble's averaged probabilities
    videotag predict --model_dir=runs/nextvlad --checkpoint=best --input_data_pattern=...
    videotag predict --ensemble runs/nextvlad exports/softdbof/1 --input_data_pattern=...
    # segments: the 2019 Kaggle submission and a timeline per video
    videotag predict --segments --model_dir=runs/nextvlad \
        --input_data_pattern='data/test*.tfrecord' --output_file=submission.csv \
        --timeline_file=timeline.jsonl

The formats: Kaggle CSV, VideoTag JSON or JSON Lines; with --segments, the segment
submission (`Class,Segments`, to --output_file) and the timeline in JSON Lines (one
video a line: its tags, and per segment its start and end in seconds and top tags,
to --timeline_file). `python tools/predict.py` takes the same flags.
"""

import sys

from absl import flags

from videotag.cli.model_flags import define_checkpoint_flag, define_ensemble_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_enum("on_bad_record", None, ["error", "skip"], "Bad records: stop (error) or "
                      "drop and count (skip); default the run's config.")
    flags.DEFINE_string("model_dir", None, "Trained model directory.")
    flags.DEFINE_string("saved_model", None, "Exported SavedModel version folder.")
    flags.DEFINE_string("input_data_pattern", None, "Glob of records to predict.")
    flags.DEFINE_multi_string("videos", [], "Folder of videos, video file or manifest "
                              "(repeatable): extract features, then predict.")
    flags.DEFINE_string("extraction_config", None, "With --videos: the extraction.yaml of the "
                        "model's training records.")
    flags.DEFINE_string("features_dir", None, "With --videos: keep the extracted records here.")
    flags.DEFINE_string("output_file", None, "Output file (default: standard output).")
    flags.DEFINE_enum("format", None, ["csv", "json", "jsonl"],
                      "Kaggle CSV, VideoTag JSON list or JSON Lines (with the category); "
                      "default csv, json with --videos.")
    flags.DEFINE_integer("top_k", 20, "Tags per video.")
    flags.DEFINE_float("threshold", 0.0, "Leave out tags below this probability (after top_k).")
    flags.DEFINE_integer("batch_size", 256, "Videos per batch.")
    flags.DEFINE_float("progress_seconds", 10.0, "Seconds between progress lines (0: none).")
    define_checkpoint_flag(__name__)
    define_ensemble_flags(__name__)
    flags.DEFINE_bool("segments", False, "Tag every segment: the segment submission to "
                      "--output_file, the timeline to --timeline_file.")
    flags.DEFINE_string("timeline_file", None, "With --segments: the timeline (JSON Lines).")
    flags.DEFINE_integer("top_n", 100_000, "With --segments: segments per class in the "
                         "submission.")
    flags.DEFINE_string("segment_label_file", None, "With --segments and --model_dir: the "
                        "segment classes (segment_label_ids.csv); default the run's.")


def main(argv):
    """Predicts and writes the rows. Returns 1 when a video could not be extracted."""
    from videotag.data import list_files
    from videotag.errors import VideotagError
    from videotag.files import check_output_dir, check_output_file
    from videotag.inference import (
        predict_from_model,
        predict_from_model_dir,
        predict_from_saved_model,
        write_predictions_file,
    )

    if FLAGS.segments and FLAGS.ensemble:
        raise VideotagError("--segments predicts with one model (--model_dir or "
                            "--saved_model), not --ensemble")
    if FLAGS.ensemble:
        from videotag.cli.model_flags import load_ensemble_from_flags

        if FLAGS.videos or not FLAGS.input_data_pattern:
            raise VideotagError("--ensemble predicts from records: give --input_data_pattern")
        model, cfg, _ = load_ensemble_from_flags(argv, ["model_dir", "saved_model"])
    elif argv[1:]:
        raise VideotagError(f"unexpected arguments {argv[1:]} (did you mean --ensemble?)")
    elif bool(FLAGS.model_dir) == bool(FLAGS.saved_model):
        raise VideotagError("give exactly one of --model_dir and --saved_model (or --ensemble "
                            "A B ...)")
    if FLAGS.checkpoint and FLAGS.saved_model:
        raise VideotagError("--checkpoint picks the weights of a --model_dir (a SavedModel "
                            "has its own)")
    if bool(FLAGS.input_data_pattern) == bool(FLAGS.videos):
        raise VideotagError("give exactly one of --input_data_pattern and --videos")
    if FLAGS.top_k <= 0:
        raise VideotagError("--top_k must be positive")
    if FLAGS.segments:
        return _segments()
    fmt = FLAGS.format or ("json" if FLAGS.videos else "csv")
    # inputs and outputs are checked before the work
    if FLAGS.output_file:
        check_output_file(FLAGS.output_file, "predictions file")
    if FLAGS.features_dir:
        check_output_dir(FLAGS.features_dir, "features folder")
    if FLAGS.input_data_pattern:
        list_files(FLAGS.input_data_pattern)
    failed = 0
    if FLAGS.ensemble:
        rows = predict_from_model(cfg, model, FLAGS.input_data_pattern, FLAGS.top_k,
                                  FLAGS.batch_size, FLAGS.on_bad_record)
    elif FLAGS.videos:
        rows, failed = _video_rows()
    elif FLAGS.model_dir:
        rows = predict_from_model_dir(FLAGS.model_dir, FLAGS.input_data_pattern, FLAGS.top_k,
                                      FLAGS.batch_size, FLAGS.on_bad_record, FLAGS.checkpoint)
    else:
        rows = predict_from_saved_model(FLAGS.saved_model, FLAGS.input_data_pattern,
                                        FLAGS.top_k, FLAGS.batch_size)
    count = write_predictions_file(rows, FLAGS.output_file, fmt, FLAGS.threshold,
                                   progress_seconds=FLAGS.progress_seconds)
    print(f"predicted {count} videos" + (f" to {FLAGS.output_file}" if FLAGS.output_file else ""),
          file=sys.stderr)
    if failed:
        print(f"error: {failed} video(s) could not be extracted (listed above)", file=sys.stderr)
    return 1 if failed else 0


def _segments():
    """predict --segments: the submission and the timeline."""
    from videotag.errors import VideotagError
    from videotag.inference import (
        predict_segments_from_model_dir,
        predict_segments_from_saved_model,
        write_segment_predictions,
    )

    if FLAGS.format not in (None, "csv"):
        raise VideotagError("--segments writes the submission as csv (--output_file) and the "
                            "timeline as JSON Lines (--timeline_file): drop --format")
    if FLAGS.top_n <= 0:
        raise VideotagError("--top_n must be positive")
    if FLAGS.segment_label_file and not FLAGS.model_dir:
        raise VideotagError("--segment_label_file goes with --model_dir (a SavedModel has its "
                            "segment classes)")
    failed = 0
    if FLAGS.videos:
        rows, failed = _video_rows(segments=True)
    elif FLAGS.model_dir:
        rows = predict_segments_from_model_dir(
            FLAGS.model_dir, FLAGS.input_data_pattern, FLAGS.top_k, FLAGS.batch_size,
            FLAGS.on_bad_record, FLAGS.segment_label_file, FLAGS.checkpoint)
    else:
        rows = predict_segments_from_saved_model(FLAGS.saved_model, FLAGS.input_data_pattern,
                                                 FLAGS.top_k, FLAGS.batch_size)
    submission = FLAGS.output_file
    count = write_segment_predictions(rows, submission, FLAGS.timeline_file, FLAGS.top_n,
                                      FLAGS.threshold, progress_seconds=FLAGS.progress_seconds)
    written = [f for f in (submission, FLAGS.timeline_file) if f]
    print(f"predicted the segments of {count} videos" +
          (f" to {' and '.join(written)}" if written else ""), file=sys.stderr)
    if failed:
        print(f"error: {failed} video(s) could not be extracted (listed above)", file=sys.stderr)
    return 1 if failed else 0


def _video_rows(segments: bool = False):
    from videotag.extraction import load
    from videotag.extraction.predict import predict_videos

    inputs = [part for value in FLAGS.videos for part in value.split(",") if part]
    rows, summary = predict_videos(inputs, load(FLAGS.extraction_config), FLAGS.model_dir,
                                   FLAGS.saved_model, FLAGS.top_k, FLAGS.batch_size,
                                   FLAGS.features_dir, segments=segments,
                                   checkpoint=FLAGS.checkpoint)
    return rows, len(summary.failed)
