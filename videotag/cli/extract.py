r"""Extract YT8M frame-level records from your own videos.

    # 1. fit the PCA (+ whitening) on your videos (or use the YT8M release files)
    videotag extract --input=videos/ --fit_pca --pca_dir=pca \
        --audio_weights=vggish_model.ckpt
    # 2. extract: records with id (file stem), title and labels from a manifest
    videotag extract --input=videos/manifest.tsv --output_dir=features \
        --pca_dir=pca --audio_weights=vggish_model.ckpt --label_file=vocabulary.csv

Inputs (repeatable, or comma-separated): folders of videos, globs, video files,
manifests (`path<TAB>title<TAB>label1,label2`). A rerun skips the videos already
written. `videotag batch-extract` runs the same extraction as an Apache Beam pipeline.
Exit status 1 when a video failed (the others are written and counted).
`python tools/extract_features.py` takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    define_settings_flags()
    flags.DEFINE_bool("fit_pca", False, "Fit the PCA on these videos and write it to --pca_dir "
                      "(then extract too if --output_dir is given).")
    flags.DEFINE_bool("progress", True, "Show a progress bar.")


def define_settings_flags() -> None:
    """The flags of the inputs, the output folder and the extraction settings (shared
    with `videotag batch-extract`)."""
    flags.DEFINE_multi_string("input", [], "Folder of videos, glob, video file or manifest "
                              "(repeatable).")
    flags.DEFINE_string("output_dir", None, "Folder of the records (part-NNNNN.tfrecord).")
    flags.DEFINE_string("config", None,
                        "Extraction settings YAML (e.g. another run's extraction.yaml).")
    flags.DEFINE_multi_string("override", [], "key=value extraction setting (repeatable).")
    flags.DEFINE_string("backbone", None, "keras.applications CNN (default InceptionV3).")
    flags.DEFINE_string("weights", None, "CNN weights: imagenet (default), a file, or random.")
    flags.DEFINE_string("audio_weights", None, "VGGish weights: vggish_model.ckpt, a Keras "
                        "weights file, or random.")
    flags.DEFINE_string("pca_dir", None, "PCA folder with one sub-folder per feature (rgb/, "
                        "audio/); replaces the pca.* settings.")
    flags.DEFINE_string("label_file", None, "Class names for the manifest's label names.")


def settings_from_flags():
    """(extraction settings, inputs) of the settings flags.

    Raises:
        ConfigError: an unknown key or a bad value, naming the key.
    """
    from videotag.extraction import load

    inputs = [part for value in FLAGS.input for part in value.split(",") if part]
    overrides = list(FLAGS.override)
    for key, value in (("backbone", FLAGS.backbone), ("backbone_weights", FLAGS.weights),
                       ("audio_weights", FLAGS.audio_weights), ("label_file", FLAGS.label_file)):
        if value is not None:
            overrides.append(f"{key}={value!r}")
    cfg = load(FLAGS.config, overrides)
    if FLAGS.pca_dir:
        cfg.pca = {name: f"{FLAGS.pca_dir.rstrip('/')}/{name}" for name in cfg.feature_names}
    return cfg, inputs


def main(argv):
    """Fits the PCA and/or extracts. Returns 1 when a video failed, else 0."""
    del argv
    from videotag.errors import ConfigError
    from videotag.extraction import Extractor, extract, fit_pca
    from videotag.output_checks import check_output_dir

    cfg, inputs = settings_from_flags()
    if not FLAGS.fit_pca and not FLAGS.output_dir:
        raise ConfigError("give --output_dir (extract) or --fit_pca with --pca_dir")
    if FLAGS.output_dir:  # outputs are checked before the work
        check_output_dir(FLAGS.output_dir, "output folder")
    if FLAGS.fit_pca and FLAGS.pca_dir:
        check_output_dir(FLAGS.pca_dir, "PCA folder")
    extractor = None
    if FLAGS.fit_pca:
        if not FLAGS.pca_dir:
            raise ConfigError("--fit_pca needs --pca_dir (where the PCA files go)")
        extractor = Extractor(cfg, with_pca=False)  # gets the fitted PCA, then extracts
        summary, pcas = fit_pca(cfg, inputs, FLAGS.pca_dir, extractor, progress=FLAGS.progress)
        print(summary.text("fitted the PCA on"), file=sys.stderr)
        for name, pca in pcas.items():
            print(f"  {name}: {pca.input_dim} -> {pca.output_dim} in {cfg.pca[name]}",
                  file=sys.stderr)
        failed = len(summary.failed)
    if FLAGS.output_dir:
        summary = extract(cfg, inputs, FLAGS.output_dir, extractor, progress=FLAGS.progress)
        print(summary.text() + f"; records in {FLAGS.output_dir}", file=sys.stderr)
        failed = len(summary.failed)
    if failed:
        print(f"error: {failed} video(s) failed (listed above and in summary.json)",
              file=sys.stderr)
        return 1
    return 0
