"""Train a registered model.

    python tools/train.py --model_name=NEXTVLAD                    # demo data
    python tools/train.py --model_name=NEXTVLAD --model_dir=runs/nv \
        --train_data_pattern='yt8m/train*.tfrecord' \
        --eval_data_pattern='yt8m/validate*.tfrecord' --override train.epochs=10
    python tools/train.py --distribution=mirrored ...            # every GPU of the machine
    TF_CONFIG='{...}' python tools/train.py --distribution=multi_worker \
        --override train.steps_per_epoch=1000 ...                  # one process per worker

Running the same command again resumes from the newest checkpoint in --model_dir.
"""

from absl import app, flags

from videotag import config as config_lib
from videotag.cli import run

FLAGS = flags.FLAGS
flags.DEFINE_string("model_name", "NEXTVLAD", "Registered model name (see videotag.list_models()).")
flags.DEFINE_string("config", None, "YAML config; default configs/<model_name>.yaml.")
flags.DEFINE_string("model_dir", None, "Output folder; default runs/<model_name>.")
flags.DEFINE_string("train_data_pattern", None, "Glob of training shards (default: demo data).")
flags.DEFINE_string("eval_data_pattern", None, "Glob of validation shards.")
flags.DEFINE_integer("epochs", None, "Overrides train.epochs.")
flags.DEFINE_integer("batch_size", None, "Overrides train.batch_size.")
flags.DEFINE_enum("distribution", None, ["none", "mirrored", "multi_worker"],
                  "Overrides train.distribution.")
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                     "(to try --distribution=mirrored on a machine without GPUs).")
flags.DEFINE_multi_string("override", [], "key=value config override (repeatable).")


def main(argv):
    del argv
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
    ):
        if value is not None:
            overrides.append(f"{key}={value}" if not isinstance(value, str) else f"{key}={value!r}")
    cfg = config_lib.load(FLAGS.config or FLAGS.model_name, overrides, model_name=FLAGS.model_name)
    train(cfg, FLAGS.model_dir or f"runs/{cfg.model.name.lower()}")
    return 0


if __name__ == "__main__":
    app.run(run(main))
