"""Score a trained model: GAP@20, mAP, Hit@1, PERR.

    python tools/eval.py --model_dir=runs/nextvlad --report=runs/nextvlad/eval.json
"""

import json
import sys

from absl import app, flags

from videotag.cli import run

FLAGS = flags.FLAGS
flags.DEFINE_enum("on_bad_record", None, ["error", "skip"],
                  "Bad records: stop (error) or drop and count (skip); default the run's config.")
flags.DEFINE_string("model_dir", None, "Trained model directory.", required=True)
flags.DEFINE_string("eval_data_pattern", None, "Records to score; default the run's validation data.")
flags.DEFINE_string("report", None, "Write the metrics as JSON here.")
flags.DEFINE_integer("batch_size", None, "Videos per batch.")


def main(argv):
    del argv
    from videotag.evaluation.evaluator import evaluate, format_metrics
    from videotag.training.trainer import load_trained

    cfg, model = load_trained(FLAGS.model_dir)
    cfg.data.on_bad_record = FLAGS.on_bad_record or cfg.data.on_bad_record
    result = evaluate(model, cfg, FLAGS.eval_data_pattern, FLAGS.batch_size)
    print(format_metrics(result, cfg.eval.top_k))
    if result.get("skipped_records"):
        print(f"skipped bad records: {result['skipped_records']}", file=sys.stderr)
    if FLAGS.report:
        with open(FLAGS.report, "w") as f:
            json.dump(result, f, indent=2)
        print(f"report written to {FLAGS.report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    app.run(run(main))
