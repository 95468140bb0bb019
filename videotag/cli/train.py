r"""Train a registered model (on the built-in demo data when no data is given).

    videotag train --model_name=NEXTVLAD --config=nextvlad_demo     # demo data
    videotag train --model_name=NEXTVLAD --model_dir=runs/nv \
        --train_data_pattern='yt8m/train*.tfrecord' \
        --eval_data_pattern='yt8m/validate*.tfrecord' --override train.epochs=10
    videotag train --distribution=mirrored ...                    # every GPU of the machine
    TF_CONFIG='{...}' videotag train --distribution=multi_worker \
        --override train.steps_per_epoch=1000 ...                  # one process per worker
    videotag train --segments --model_name=NEXTVLAD --config=nextvlad_demo \
        --model_dir=runs/segments              # on the rated segments (YT8M 2019 layout)

Running the same command again resumes from the newest checkpoint in --model_dir.
`--init_from=DIR_OR_CHECKPOINT` starts a new run from another run's weights (a model
directory, a checkpoint folder or a .keras file): every weight whose path and shape
match is loaded, the rest (e.g. a head with another number of classes) initialised
anew, and the run reports which; the run's own checkpoints win when it resumes.
The demo data is generated on first use into $VIDEOTAG_DEMO_DIR when set, else
data/demo_generated in a source checkout, else $XDG_CACHE_HOME/videotag/demo
(~/.cache/videotag/demo). `python tools/train.py` takes the same flags.
"""

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("model_name", "NEXTVLAD",
                        "Registered model name (see videotag.list_models()).")
    flags.DEFINE_string("config", None, "YAML config file, or the name of a packaged config "
                        "(e.g. nextvlad_demo); default the packaged <model_name>.yaml.")
    flags.DEFINE_string("model_dir", None, "Output folder; default runs/<model_name>.")
    flags.DEFINE_string("train_data_pattern", None, "Glob of training shards (default: demo "
                        "data).")
    flags.DEFINE_string("eval_data_pattern", None, "Glob of validation shards.")
    flags.DEFINE_integer("epochs", None, "Overrides train.epochs.")
    flags.DEFINE_integer("batch_size", None, "Overrides train.batch_size.")
    flags.DEFINE_enum("distribution", None, ["none", "mirrored", "multi_worker"],
                      "Overrides train.distribution.")
    flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                         "(to try --distribution=mirrored on a machine without GPUs).")
    flags.DEFINE_string("init_from", None, "Warm start: a model directory, checkpoint folder "
                        "or .keras file whose weights of matching path and shape are loaded "
                        "(sets train.init_from).")
    flags.DEFINE_multi_string("override", [], "key=value config override (repeatable).")
    flags.DEFINE_bool("segments", False, "Train on the rated segments of segment-rated records "
                      "(data.segment_labels=true): the loss only on rated pairs, validation "
                      "with the segment metric.")


def main(argv):
    """Trains; the summary line goes to stderr. Returns the exit status."""
    del argv
    from videotag import config as config_lib
    from videotag.data import list_files
    from videotag.data.labels import check_label_files
    from videotag.data.sources import uses_demo_data
    from videotag.output_checks import check_output_dir
    from videotag.registry import model_config_class
    from videotag.training import train
    from videotag.training.distribution import split_host_cpu

    if FLAGS.logical_cpus:
        split_host_cpu(FLAGS.logical_cpus)  # before anything starts TensorFlow's devices
    model_config_class(FLAGS.model_name)  # an unknown name fails here, listing the valid ones

    overrides = list(FLAGS.override)
    for key, value in (
        ("data.train_data_pattern", FLAGS.train_data_pattern),
        ("data.eval_data_pattern", FLAGS.eval_data_pattern),
        ("train.epochs", FLAGS.epochs),
        ("train.batch_size", FLAGS.batch_size),
        ("train.distribution", FLAGS.distribution),
        ("train.init_from", FLAGS.init_from),
        ("data.segment_labels", True if FLAGS.segments else None),
    ):
        if value is not None:
            overrides.append(f"{key}={value}" if not isinstance(value, str) else f"{key}={value!r}")
    cfg = config_lib.load(FLAGS.config or FLAGS.model_name, overrides, model_name=FLAGS.model_name)
    # inputs, then outputs, are checked before the work (the demo data is made by train)
    for pattern in (cfg.data.train_data_pattern, cfg.data.eval_data_pattern):
        if pattern:
            list_files(pattern)
    if not uses_demo_data(cfg):
        check_label_files(cfg.data)
    model_dir = FLAGS.model_dir or f"runs/{cfg.model.name.lower()}"
    check_output_dir(model_dir, "model directory")
    train(cfg, model_dir)
    return 0
