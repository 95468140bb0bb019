"""Export a trained model as a SavedModel for TF Serving.

    videotag export --model_dir=runs/nextvlad --export_dir=exports
    # -> exports/nextvlad/1/  (signatures serving_default and predict_dense, warm-up
    #    requests, config and model.keras in assets.extra/) and exports/models.config

`python tools/export.py` takes the same flags.
"""

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("model_dir", None, "Trained model directory.", required=True)
    flags.DEFINE_string("export_dir", "exports",
                        "Base folder; the model goes to <export_dir>/<name>/<version>/.")
    flags.DEFINE_integer("version", None, "Integer version; default one above the highest present.")
    flags.DEFINE_string("name", None, "Serving model name; default the model name in lower case.")
    flags.DEFINE_integer("top_k", None, "Tags returned per video; default export.top_k.")
    flags.DEFINE_bool("keras", True, "Also save the Keras model as assets.extra/model.keras.")


def main(argv):
    """Exports and prints the docker command that serves the export."""
    del argv
    from videotag.export import docker_command, export_saved_model
    from videotag.files import check_output_dir
    from videotag.training.trainer import load_trained

    check_output_dir(FLAGS.export_dir, "export folder")  # before the work
    cfg, model = load_trained(FLAGS.model_dir)
    path = export_saved_model(model, cfg, FLAGS.export_dir, FLAGS.version, FLAGS.name,
                              top_k=FLAGS.top_k, save_keras=FLAGS.keras)
    print(f"exported {cfg.model.name} to {path}")
    print(f"serve it with: {docker_command(FLAGS.export_dir)}")
    return 0
