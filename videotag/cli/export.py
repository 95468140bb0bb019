"""Export a trained model as a SavedModel for TF Serving.

    videotag export --model_dir=runs/nextvlad --export_dir=exports
    # -> exports/nextvlad/1/  (signatures serving_default and predict_dense, warm-up
    #    requests, config and model.keras in assets.extra/) and exports/models.config
    videotag export --model_dir=runs/nextvlad --checkpoint=best
    videotag export --ensemble runs/nextvlad runs/softdbof --name=tagger
    # -> exports/tagger/1/: one parse of the records, every member, averaged tags,
    #    embeddings concatenated (--ensemble_embedding=mean: averaged); ensemble.json
    #    in assets.extra/ names the members

`python tools/export.py` takes the same flags.
"""

from absl import flags

from videotag.cli.model_flags import define_checkpoint_flag, define_ensemble_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("model_dir", None, "Trained model directory.")
    flags.DEFINE_string("export_dir", "exports",
                        "Base folder; the model goes to <export_dir>/<name>/<version>/.")
    flags.DEFINE_integer("version", None, "Integer version; default one above the highest present.")
    flags.DEFINE_string("name", None, "Serving model name; default the model name in lower case.")
    flags.DEFINE_integer("top_k", None, "Tags returned per video; default export.top_k.")
    flags.DEFINE_bool("keras", True, "Also save the Keras model as assets.extra/model.keras.")
    define_checkpoint_flag(__name__)
    define_ensemble_flags(__name__)


def main(argv):
    """Exports and prints the docker command that serves the export."""
    import json

    from videotag.errors import ConfigError
    from videotag.export import docker_command, export_saved_model
    from videotag.output_checks import check_output_dir
    from videotag.training.trainer import load_trained

    check_output_dir(FLAGS.export_dir, "export folder")  # before the work
    extra, what = {}, None
    if FLAGS.ensemble:
        from videotag.cli.model_flags import ensemble_weights, load_ensemble_from_flags
        from videotag.inference.ensemble import describe

        model, cfg, members = load_ensemble_from_flags(argv, ["model_dir"])
        description = describe(members, ensemble_weights(), FLAGS.ensemble_embedding)
        extra["ensemble.json"] = json.dumps(description, indent=2)
        what, name = f"an ensemble of {len(members)} models", FLAGS.name or "ensemble"
    else:
        if argv[1:]:
            raise ConfigError(f"unexpected arguments {argv[1:]} (did you mean --ensemble?)")
        if not FLAGS.model_dir:
            raise ConfigError("--model_dir is required (or --ensemble A B ...)")
        cfg, model = load_trained(FLAGS.model_dir, FLAGS.checkpoint)
        what, name = cfg.model.name, FLAGS.name
    path = export_saved_model(model, cfg, FLAGS.export_dir, FLAGS.version, name,
                              top_k=FLAGS.top_k, save_keras=FLAGS.keras, extra_files=extra)
    print(f"exported {what} to {path}")
    print(f"serve it with: {docker_command(FLAGS.export_dir)}")
    return 0
