"""Export a trained model as a SavedModel for TF Serving.

    python tools/export.py --model_dir=runs/nextvlad --export_dir=exports
    # -> exports/nextvlad/1/  (signatures serving_default and predict_dense)
"""

from absl import app, flags

from videotag.cli import run

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained model directory.", required=True)
flags.DEFINE_string("export_dir", "exports", "Base folder; the model goes to <export_dir>/<name>/<version>/.")
flags.DEFINE_integer("version", None, "Integer version; default one above the highest present.")
flags.DEFINE_string("name", None, "Serving model name; default the model name in lower case.")
flags.DEFINE_integer("top_k", None, "Classes returned per video; default export.top_k.")


def main(argv):
    del argv
    from videotag.export import export_saved_model
    from videotag.training.trainer import load_trained

    cfg, model = load_trained(FLAGS.model_dir)
    if FLAGS.top_k:
        cfg.export.top_k = FLAGS.top_k
    path = export_saved_model(model, cfg, FLAGS.export_dir, FLAGS.version, FLAGS.name)
    print(f"exported {cfg.model.name} to {path}")
    return 0


if __name__ == "__main__":
    app.run(run(main))
