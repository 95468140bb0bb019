"""SavedModel export that TF Serving loads as it is (no project code, no custom ops).

Layout: `<export_dir>/<model name>/<version>/` with integer versions (TF Serving
serves the highest). Signatures, every tensor batch-first:

- `serving_default`: `example_bytes` string [B] (serialized YT8M frame-level
  SequenceExamples) -> `video_id` string [B], `class_indexes` int32 [B, k],
  `predictions` float32 [B, k], `class_names` string [B, k], `embedding` float32 [B, d].
- `predict_dense`: each feature uint8 [B, T, size] and `num_frames` int32 [B] ->
  the same outputs but `video_id`.

Models with a `title` input (string [B]) also read the records' title (context
`data.title_key`, "" when absent) and take `title` in `predict_dense`; the model
tokenises it itself. A title that is not valid UTF-8 fails the request.

A malformed record (wrong frame byte length, missing id) fails its request with
InvalidArgument; the next request is served normally.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Optional

import tensorflow as tf

from videotag.data import schema
from videotag.data.labels import load_label_names
from videotag.errors import ModelError


class ServingModule(tf.Module):
    """Wraps a videotag Keras model with the serving signatures.

    Args:
        model: the Keras model (inputs: features + num_frames; outputs tags, embedding).
        cfg: the run's config (data schema, export.top_k).
        class_names: one name per class, baked into the graph.
    """

    def __init__(self, model, cfg, class_names: List[str]):
        super().__init__(name="videotag_serving")
        if cfg.data.record_type != "frame":
            raise ModelError("export supports frame-level models (data.record_type=frame)")
        self.model = model
        self._data = cfg.data
        self._top_k = min(cfg.export.top_k, cfg.data.num_classes)
        self.class_names = tf.constant(class_names, dtype=tf.string)
        self._title = schema.TITLE_KEY in [t.name for t in model.inputs]
        data = cfg.data
        self.serve_examples = tf.function(
            self._serve_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name="example_bytes")],
        )
        dense_spec = [
            tf.TensorSpec([None, None, size], tf.uint8, name=name)
            for name, size in zip(data.feature_names, data.feature_sizes)
        ] + [tf.TensorSpec([None], tf.int32, name=schema.NUM_FRAMES_KEY)]
        if self._title:
            dense_spec.append(tf.TensorSpec([None], tf.string, name=schema.TITLE_KEY))
        self.serve_dense = tf.function(self._serve_dense, input_signature=dense_spec)

    def _outputs(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        out = self.model(inputs, training=False)
        scores, indexes = tf.math.top_k(tf.cast(out["tags"], tf.float32), k=self._top_k)
        return {
            "class_indexes": tf.cast(indexes, tf.int32),
            "predictions": scores,
            "class_names": tf.gather(self.class_names, indexes),
            "embedding": tf.cast(out["embedding"], tf.float32),
        }

    def _check_title(self, title):
        valid = tf.equal(tf.strings.unicode_transcode(
            title, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD), title)
        # no quotes in the message: the assertion escapes them
        tf.debugging.assert_equal(valid, True, message=f"the title (context key "
                                  f"{self._data.title_key}) is not valid UTF-8 text")
        return title

    def _serve_dense(self, *tensors):
        names = list(self._data.feature_names) + [schema.NUM_FRAMES_KEY]
        if self._title:
            names.append(schema.TITLE_KEY)
        inputs = dict(zip(names, tensors))
        if self._title:
            inputs[schema.TITLE_KEY] = self._check_title(inputs[schema.TITLE_KEY])
        steps = tf.shape(tensors[0])[1]
        inputs[schema.NUM_FRAMES_KEY] = tf.minimum(inputs[schema.NUM_FRAMES_KEY], steps)
        return self._outputs(inputs)

    def _serve_examples(self, example_bytes):
        data = self._data
        context_features = {data.id_key: tf.io.FixedLenFeature([], tf.string)}
        if self._title:
            context_features[data.title_key] = tf.io.FixedLenFeature([], tf.string,
                                                                     default_value="")
        context, lists, lengths = tf.io.parse_sequence_example(
            example_bytes,
            context_features=context_features,
            sequence_features={
                n: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                for n in data.feature_names
            },
        )
        num_frames = tf.reduce_min(
            tf.stack([tf.cast(lengths[n], tf.int32) for n in data.feature_names]), axis=0
        )
        num_frames = tf.minimum(num_frames, data.max_frames)
        steps = tf.reduce_max(tf.concat([num_frames, [0]], 0))
        inputs = {schema.NUM_FRAMES_KEY: num_frames}
        valid = tf.sequence_mask(num_frames, steps)
        for name, size in zip(data.feature_names, data.feature_sizes):
            frames = lists[name][:, :steps]
            byte_lengths = tf.strings.length(frames)
            tf.debugging.assert_equal(
                tf.boolean_mask(byte_lengths, valid),
                size,
                message=f"feature list '{name}' has a frame whose byte length is not {size}",
            )
            inputs[name] = tf.io.decode_raw(frames, tf.uint8, fixed_length=size)
        if self._title:
            inputs[schema.TITLE_KEY] = self._check_title(context[data.title_key])
        outputs = self._outputs(inputs)
        outputs["video_id"] = context[data.id_key]
        return outputs


def next_version(base: Path) -> int:
    """1 + the highest integer version folder under `base` (1 when there is none)."""
    versions = [int(p.name) for p in base.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(
    model, cfg, export_dir: str, version: Optional[int] = None, name: Optional[str] = None
) -> Path:
    """Writes the SavedModel to `<export_dir>/<name>/<version>/` and returns that path.

    Args:
        model: the trained Keras model.
        cfg: its config.
        export_dir: the base folder TF Serving watches.
        version: integer version; default: one above the highest present.
        name: serving model name; default: the model's name in lower case.
    """
    base = Path(export_dir) / (name or cfg.model.name.lower())
    version = version if version is not None else next_version(base)
    target = base / str(version)
    if target.exists():
        raise ModelError(f"{target} exists already: choose another --version")
    names = load_label_names(cfg.data.label_file, cfg.data.num_classes)
    module = ServingModule(model, cfg, names)
    signatures = {
        "serving_default": module.serve_examples.get_concrete_function(),
        "predict_dense": module.serve_dense.get_concrete_function(),
    }
    tmp = base / f".{version}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    base.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(tmp), signatures=signatures)
    extra = tmp / "assets.extra"
    extra.mkdir(exist_ok=True)
    cfg.save(extra / "videotag_config.yaml")
    tmp.rename(target)  # TF Serving never sees a half-written version
    return target
