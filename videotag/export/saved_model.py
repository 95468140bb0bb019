"""SavedModel export that TF Serving loads as it is (no project code, no custom ops).

Layout (TF Serving serves the highest integer version of each model):

    <export_dir>/
      models.config                     TF Serving --model_config_file, every model here
      <name>/<version>/
        saved_model.pb, variables/      signatures serving_default, predict_dense and
                                        (a model with tags) predict_segments
        assets.extra/
          tf_serving_warmup_requests    replayed by TF Serving before the first request
          videotag_config.yaml          the run's config
          model.keras                   the Keras model (keras.saving.load_model)

The signatures are described in `videotag.export.serving`. A version is written
under a temporary name and swapped in when complete (`videotag.files.replace_dir`:
one rename, or a verified copy with `saved_model.pb` last on object stores), so TF
Serving never takes half of one; `export_dir` may be on any file system of
TensorFlow. The free space is checked first against the size of the weights.
"""

from __future__ import annotations

import warnings
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf

from videotag import files
from videotag.data import schema
from videotag.data.labels import load_label_names
from videotag.output_checks import check_free_space, check_output_dir
from videotag.data.segments import segment_classes
from videotag.data.writer import video_example
from videotag.errors import ModelError
from videotag.export.serving import EXAMPLES_INPUT, ServingModule
from videotag.export.tf_serving import (
    WARMUP_FILE,
    update_models_config,
    write_warmup_file,
)

SERVING_DEFAULT = "serving_default"
PREDICT_DENSE = "predict_dense"
PREDICT_SEGMENTS = "predict_segments"
EXTRA_DIR = "assets.extra"
CONFIG_FILE = "videotag_config.yaml"
KERAS_FILE = "model.keras"
# Warm-up requests: each signature at these batch sizes, videos of WARMUP_FRAMES frames.
WARMUP_BATCH_SIZES = (1, 8)
WARMUP_FRAMES = 20


def next_version(base: str) -> int:
    """1 + the highest integer version folder under `base` (1 when there is none)."""
    if not tf.io.gfile.isdir(str(base)):
        return 1
    versions = [int(n.rstrip("/")) for n in tf.io.gfile.listdir(str(base))
                if n.rstrip("/").isdigit() and tf.io.gfile.isdir(files.join(str(base), n))]
    return max(versions, default=0) + 1


def export_bytes(model, save_keras: bool) -> int:
    """About the bytes an export takes: the weights in the SavedModel, once more in
    `model.keras` with `save_keras`, and a few MB of graph and warm-up requests."""
    weights = sum(int(np.prod(v.shape)) * v.dtype.size for v in
                  (tf.convert_to_tensor(w) for w in model.weights))
    return weights * (2 if save_keras else 1) + (8 << 20)


def build_serving_module(model, cfg, top_k: Optional[int] = None) -> ServingModule:
    """The serving module of `model`, with the class and category names of `cfg`."""
    data = cfg.data
    names = load_label_names(data.label_file, data.num_classes)
    categories = (load_label_names(data.category_file, data.num_categories)
                  if data.num_categories else None)
    return ServingModule(model, cfg, names, categories, top_k=top_k,
                         segment_classes=segment_classes(data).tolist())


def warmup_requests(module: ServingModule, cfg, seed: int = 0
                    ) -> Iterator[Tuple[str, Dict[str, np.ndarray]]]:
    """(signature, inputs) pairs that touch every signature: random videos of
    WARMUP_FRAMES frames (or random mean features, for a video-level model) at each
    of WARMUP_BATCH_SIZES."""
    rng = np.random.default_rng(seed)
    if not module.frame_level:
        yield from _video_level_warmup(module, cfg, rng)
        return
    frames = min(WARMUP_FRAMES, cfg.data.max_frames)
    for batch in WARMUP_BATCH_SIZES:
        features = {name: rng.integers(0, 256, (batch, frames, size), dtype=np.uint8)
                    for name, size in module.features}
        titles = [f"warm-up video {i}" for i in range(batch)]
        records = []
        for i in range(batch):
            context = {cfg.data.id_key: f"warmup-{i}".encode()}
            if module.has_title:
                context[cfg.data.title_key] = titles[i].encode()
            records.append(_sequence_example(context, {n: f[i] for n, f in features.items()}))
        yield SERVING_DEFAULT, {EXAMPLES_INPUT: np.array(records, dtype=object)}
        dense = dict(features)
        dense[schema.NUM_FRAMES_KEY] = np.full([batch], frames, np.int32)
        if module.has_title:
            dense[schema.TITLE_KEY] = np.array([t.encode() for t in titles], dtype=object)
        yield PREDICT_DENSE, dense
        if hasattr(module, "serve_segments"):
            yield PREDICT_SEGMENTS, {EXAMPLES_INPUT: np.array(records, dtype=object)}


def _video_level_warmup(module: ServingModule, cfg, rng):
    """The warm-up requests of a video-level model: random mean features."""
    for batch in WARMUP_BATCH_SIZES:
        features = {name: rng.uniform(-1, 1, (batch, size)).astype(np.float32)
                    for name, size in module.features}
        titles = [f"warm-up video {i}" for i in range(batch)]
        records = [video_example(f"warmup-{i}", [], {n: f[i] for n, f in features.items()},
                                 id_key=cfg.data.id_key,
                                 title=titles[i] if module.has_title else None,
                                 ).SerializeToString() for i in range(batch)]
        yield SERVING_DEFAULT, {EXAMPLES_INPUT: np.array(records, dtype=object)}
        dense = dict(features)
        if module.has_title:
            dense[schema.TITLE_KEY] = np.array([t.encode() for t in titles], dtype=object)
        yield PREDICT_DENSE, dense


def _sequence_example(context: Dict[str, bytes], frames: Dict[str, np.ndarray]) -> bytes:
    """A serialized SequenceExample with bytes context values and uint8 frame lists."""
    example = tf.train.SequenceExample()
    for key, value in context.items():
        example.context.feature[key].bytes_list.value.append(value)
    for name, values in frames.items():
        feature_list = example.feature_lists.feature_list[name]
        for frame in values:
            feature_list.feature.add().bytes_list.value.append(frame.tobytes())
    return example.SerializeToString()


def inference_copy(model):
    """`model` without its optimizer (a clone with the same weights when it has one),
    so the export holds the weights alone, not Adam's two extra copies of them."""
    if getattr(model, "optimizer", None) is None:
        return model
    try:
        copy = type(model).from_config(model.get_config())  # not compiled, unlike clone_model
    except (NotImplementedError, TypeError, ValueError) as exc:
        # a model that cannot be rebuilt from its config is exported as it is: the
        # export is then larger (it carries the optimizer's state), not wrong
        warnings.warn(f"exporting {model.name} with its optimizer state: it could not be "
                      f"rebuilt from its config ({exc})", stacklevel=2)
        return model
    copy.set_weights(model.get_weights())
    return copy


def export_saved_model(
    model, cfg, export_dir: str, version: Optional[int] = None, name: Optional[str] = None,
    top_k: Optional[int] = None, save_keras: bool = True,
    extra_files: Optional[Dict[str, str]] = None,
) -> str:
    """Writes the SavedModel to `<export_dir>/<name>/<version>/` and returns that path.

    Also writes the warm-up requests, the config and (with `save_keras`) the Keras
    model under `assets.extra/`, and updates `<export_dir>/models.config`.

    Args:
        model: the trained Keras model.
        cfg: its config.
        export_dir: the base folder TF Serving watches.
        version: integer version; default: one above the highest present.
        name: serving model name; default: the model's name in lower case.
        top_k: tags per video; default `cfg.export.top_k`.
        save_keras: also save the Keras model as `assets.extra/model.keras` (no
            optimizer state: for inference and fine-tuning from its weights).
        extra_files: more files for `assets.extra/`, name -> text (an
            ensemble's `ensemble.json`).

    Raises:
        ModelError: a version that exists already, or a model that cannot be served.
        OutputError: `export_dir` cannot be written, has less free space than the
            export needs, or ran out of space (nothing is left of the version).
        DataError: the label file does not define `data.num_classes` classes.
    """
    name = name or cfg.model.name.lower()
    base = files.join(str(export_dir), name)
    version = version if version is not None else next_version(base)
    if version <= 0:
        raise ModelError(f"version must be a positive integer, got {version}")
    target = files.join(base, str(version))
    if tf.io.gfile.exists(target):
        raise ModelError(f"{target} exists already: choose another --version")
    model = inference_copy(model)
    check_free_space(str(export_dir), export_bytes(model, save_keras), "export")
    check_output_dir(base, "export folder")
    module = build_serving_module(model, cfg, top_k)
    signatures = {
        SERVING_DEFAULT: module.serve_examples.get_concrete_function(),
        PREDICT_DENSE: module.serve_dense.get_concrete_function(),
    }
    if hasattr(module, "serve_segments"):
        signatures[PREDICT_SEGMENTS] = module.serve_segments.get_concrete_function()
    with files.output_path(target, folder=True, what="export") as tmp, \
            files.output_errors(target, "export"):
        tf.saved_model.save(module, tmp, signatures=signatures)
        extra = files.join(tmp, EXTRA_DIR)
        tf.io.gfile.makedirs(extra)
        cfg.save(files.join(extra, CONFIG_FILE))
        write_warmup_file(files.join(extra, WARMUP_FILE), name, warmup_requests(module, cfg))
        if save_keras:
            model.save(files.join(extra, KERAS_FILE))
        for file_name, text in (extra_files or {}).items():
            with tf.io.gfile.GFile(files.join(extra, file_name), "w") as f:
                f.write(text)
    update_models_config(export_dir)
    return target
